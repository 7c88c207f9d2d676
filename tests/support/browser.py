"""``Watched``: a browser page whose CSP headers and violations are recorded, for the
browser tests that check them."""

from __future__ import annotations

# Added before any page script: every violation the page meets, as "directive blocked-uri".
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sourceFile || ""));
});
"""


class Watched:
    """A page whose CSP headers and violations (events and console lines) are recorded."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        self.policies: list[str] = []
        page.add_init_script(WATCH)
        page.on("console", self._console)
        page.on("response", self._response)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(message.text)

    def _response(self, response) -> None:
        if response.request.resource_type == "document":
            self.policies.append(response.headers.get("content-security-policy", ""))

    def goto(self, url: str) -> None:
        response = self.page.goto(url)
        assert response is not None and response.ok, url
        self.page.wait_for_load_state("load")

    def violations(self) -> list[str]:
        events = self.page.evaluate("window.__csp || []")
        return events + self.console

    def assert_clean(self) -> None:
        assert self.policies, "no document loaded"
        for policy in self.policies:
            assert "script-src 'self'" in policy, policy
            assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, policy
        assert self.violations() == []
