// A long select made searchable with the admin's own Select2 (no AJAX: the options are in the
// page), e.g. a location's time zone among ~340 names: type "lond" to find Europe/London.
(function () {
  "use strict";
  var $ = window.django && window.django.jQuery;
  if (!$ || !$.fn.select2) return;
  $(function () {
    $("select[data-searchable]").select2({ width: "22em" });
  });
})();
