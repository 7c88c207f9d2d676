"""The EWS operations: each takes the parsed envelope and the caller, returns the response.

Per-item failures are ``ResponseClass="Error"`` messages (``ItemError``), whole-request
failures SOAP faults (``SoapFault``), as Exchange answers them. Who may touch a mailbox: the
mailbox's own user, an account impersonating it (``ExchangeImpersonation``, checked in
``endpoint.py``), or a user the mailbox lists in ``delegates`` (configuration); anyone else
gets ``ErrorAccessDenied`` for that item.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import items as fields
from . import recurrence
from .soap import Envelope, ItemError, M, SoapFault, T, local, q, response_message
from .state import ITEM_PREFIX, CalendarItem, EwsState, Folder, Mailbox, new_id

if TYPE_CHECKING:
    from ..core import Response
    from ..server import Sandbox


@dataclass
class Call:
    """One EWS request being answered: the state, the signed-in user and whom it acts as."""

    state: EwsState
    sandbox: Sandbox
    user: Mailbox
    acting: Mailbox
    impersonating: bool
    envelope: Envelope
    # The client's connection state (server.py): ``client_gone()`` for streamed answers.
    connection: dict[str, Any] = field(default_factory=dict)

    @property
    def op(self) -> ET.Element:
        return self.envelope.operation

    def may_access(self, mailbox: Mailbox) -> None:
        if mailbox.email == self.acting.email:
            return
        if not self.impersonating and self.user.email in self.delegates(mailbox):
            return
        raise ItemError("ErrorAccessDenied", "Access is denied. Check credentials and try again.")

    def delegates(self, mailbox: Mailbox) -> set[str]:
        for section in ("users", "rooms"):
            for entry in self.state.config.get(section, []):
                if entry["email"].lower() == mailbox.email:
                    return {d.lower() for d in entry.get("delegates", [])}
        return set()

    def names(self) -> dict[str, str]:
        return {box.email: box.name for box in self.state.mailboxes.values()}


# An operation answers with the body's element, or (GetStreamingEvents) a whole Response.
Operation = Callable[[Call], "ET.Element | Response"]
OPERATIONS: dict[str, Operation] = {}


def operation(name: str) -> Callable[[Operation], Operation]:
    def add(func: Operation) -> Operation:
        OPERATIONS[name] = func
        return func

    return add


def _response(name: str) -> tuple[ET.Element, ET.Element]:
    root = ET.Element(q(M, f"{name}Response"))
    return root, ET.SubElement(root, q(M, "ResponseMessages"))


def _required(parent: ET.Element, name: str, ns: str = M) -> ET.Element:
    found = parent.find(q(ns, name))
    if found is None:
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: The element '{local(parent.tag)}' has "
            f"incomplete content. List of possible elements expected: '{name}'.",
        )
    return found


def _each(
    call: Call, name: str, container: ET.Element, work: Callable[[ET.Element], ET.Element | None]
) -> ET.Element:
    """One response message per child of ``container``; ItemError becomes that one's error."""
    root, messages = _response(name)
    for child in container:
        try:
            payload = work(child)
        except ItemError as error:
            messages.append(response_message(name, error))
            continue
        message = response_message(name)
        if payload is not None:
            message.append(payload)
        messages.append(message)
    return root


# -- folders -----------------------------------------------------------------------------


def resolve_folder(call: Call, ref: ET.Element) -> Folder:
    """A ``t:FolderId`` or ``t:DistinguishedFolderId`` (with optional Mailbox) -> folder."""
    kind = local(ref.tag)
    if kind == "FolderId":
        folder = call.state.folder(ref.get("Id", ""))
        call.may_access(call.state.mailboxes[folder.mailbox])
        return folder
    if kind != "DistinguishedFolderId":
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: '{kind}' is not a folder id.",
        )
    name = ref.get("Id", "")
    mailbox_elem = ref.find(q(T, "Mailbox"))
    if mailbox_elem is not None:
        mailbox = call.state.mailbox(mailbox_elem.findtext(q(T, "EmailAddress")) or "")
    else:
        mailbox = call.acting
    call.may_access(mailbox)
    folder = mailbox.folders.get(name)
    if folder is None:
        raise ItemError(
            "ErrorFolderNotFound", "The specified folder could not be found in the store."
        )
    return folder


def _folder_xml(call: Call, folder: Folder) -> ET.Element:
    tag = "CalendarFolder" if folder.folder_class == "IPF.Appointment" else "Folder"
    node = ET.Element(q(T, tag))
    ET.SubElement(node, q(T, "FolderId"), {"Id": folder.id, "ChangeKey": folder.change_key})
    if folder.parent:
        parent = call.state.folders[folder.parent]
        ET.SubElement(
            node, q(T, "ParentFolderId"), {"Id": parent.id, "ChangeKey": parent.change_key}
        )
    if folder.folder_class:
        ET.SubElement(node, q(T, "FolderClass")).text = folder.folder_class
    ET.SubElement(node, q(T, "DisplayName")).text = folder.display_name
    count = len(call.state.items_in(folder))
    children = sum(1 for f in call.state.folders.values() if f.parent == folder.id)
    ET.SubElement(node, q(T, "TotalCount")).text = str(count)
    ET.SubElement(node, q(T, "ChildFolderCount")).text = str(children)
    if tag == "Folder":
        ET.SubElement(node, q(T, "UnreadCount")).text = "0"
    return node


@operation("GetFolder")
def get_folder(call: Call) -> ET.Element:
    _required(call.op, "FolderShape")
    ids = _required(call.op, "FolderIds")

    def one(ref: ET.Element) -> ET.Element:
        folders = ET.Element(q(M, "Folders"))
        folders.append(_folder_xml(call, resolve_folder(call, ref)))
        return folders

    return _each(call, "GetFolder", ids, one)


FOLDER_SHAPES = ("IdOnly", "Default", "AllProperties")
FOLDER_FIELDS = {
    "folder:FolderId": "FolderId",
    "folder:ParentFolderId": "ParentFolderId",
    "folder:FolderClass": "FolderClass",
    "folder:DisplayName": "DisplayName",
    "folder:TotalCount": "TotalCount",
    "folder:ChildFolderCount": "ChildFolderCount",
    "folder:UnreadCount": "UnreadCount",
}


def _folder_shape(shape: ET.Element) -> set[str] | None:
    """The folder elements a FolderShape asks for (None: all the sandbox keeps)."""
    base = (shape.findtext(q(T, "BaseShape")) or "").strip()
    if base not in FOLDER_SHAPES:
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: BaseShape '{base}' is not "
            "IdOnly, Default or AllProperties.",
        )
    if base != "IdOnly":
        return None
    wanted = {"FolderId"}
    for path in shape.iter(q(T, "FieldURI")):
        uri = path.get("FieldURI", "")
        if ":" not in uri:
            raise SoapFault(
                "ErrorSchemaValidation",
                f"The request failed schema validation: '{uri}' is not a valid FieldURI.",
            )
        if uri in FOLDER_FIELDS:  # others (folder:PolicyTag, ...) name properties it lacks
            wanted.add(FOLDER_FIELDS[uri])
    return wanted


def _shaped(node: ET.Element, wanted: set[str] | None) -> ET.Element:
    if wanted is not None:
        for child in list(node):
            if local(child.tag) not in wanted:
                node.remove(child)
    return node


@operation("FindFolder")
def find_folder(call: Call) -> ET.Element:
    """The folders under each parent: its children (Shallow) or all descendants (Deep),
    in pages of an IndexedPageFolderView; no Restriction is evaluated (refused)."""
    traversal = call.op.get("Traversal", "")
    if traversal not in ("Shallow", "Deep", "SoftDeleted"):
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: Traversal '{traversal}' is not "
            "Shallow, Deep or SoftDeleted.",
        )
    wanted = _folder_shape(_required(call.op, "FolderShape"))
    if call.op.find(q(M, "Restriction")) is not None:
        raise SoapFault(
            "ErrorUnsupportedQueryFilter",
            "The sandbox does not evaluate a Restriction in FindFolder; match the names read.",
        )
    paged = call.op.find(q(M, "IndexedPageFolderView"))
    parents = _required(call.op, "ParentFolderIds")
    root, messages = _response("FindFolder")
    for ref in parents:
        try:
            folder = resolve_folder(call, ref)
        except ItemError as error:
            messages.append(response_message("FindFolder", error))
            continue
        # Soft-deleted folders: the sandbox deletes none, so that view is empty.
        found = (
            []
            if traversal == "SoftDeleted"
            else call.state.children(folder, deep=traversal == "Deep")
        )
        offset, limit = 0, None
        if paged is not None:
            limit = _int_attr(paged, "MaxEntriesReturned")
            offset = _int_attr(paged, "Offset") or 0
            if paged.get("BasePoint", "Beginning") == "End":
                offset = max(0, len(found) - offset - (limit or 0))
        page = found[offset : offset + limit if limit else None]
        last = offset + len(page) >= len(found)
        message = response_message("FindFolder")
        attrs = {
            "IndexedPagingOffset": str(offset + len(page)),
            "TotalItemsInView": str(len(found)),
            "IncludesLastItemInRange": str(last).lower(),
        }
        root_folder = ET.SubElement(message, q(M, "RootFolder"), attrs)
        container = ET.SubElement(root_folder, q(T, "Folders"))
        for child in page:
            container.append(_shaped(_folder_xml(call, child), wanted))
        messages.append(message)
    return root


# -- items ---------------------------------------------------------------------------------


def _item_for(call: Call, ref: ET.Element) -> CalendarItem:
    if local(ref.tag) not in ("ItemId", "OccurrenceItemId", "RecurringMasterItemId"):
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: '{local(ref.tag)}' is not an item id.",
        )
    item = recurrence.resolve(call.state, ref)
    call.may_access(call.state.mailboxes[item.mailbox])
    return item


def _write(parent: ET.Element, call: Call, item: CalendarItem, shape: ET.Element | None) -> None:
    names, extended = fields.wanted_fields(shape)
    folder = call.state.folders[item.folder_id]
    fields.write_item(parent, item, names, extended, folder.change_key, call.names())


@operation("GetItem")
def get_item(call: Call) -> ET.Element:
    shape = _required(call.op, "ItemShape")
    fields.wanted_fields(shape)  # a bad shape fails the whole request
    ids = _required(call.op, "ItemIds")

    def one(ref: ET.Element) -> ET.Element:
        item = _item_for(call, ref)
        container = ET.Element(q(M, "Items"))
        _write(container, call, item, shape)
        return container

    return _each(call, "GetItem", ids, one)


MAX_VIEW = dt.timedelta(days=365 * 2 + 1)


@operation("FindItem")
def find_item(call: Call) -> ET.Element:
    traversal = call.op.get("Traversal", "")
    if traversal not in ("Shallow", "SoftDeleted", "Associated"):
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: "
            f"Traversal '{traversal}' is not Shallow, SoftDeleted or Associated.",
        )
    shape = _required(call.op, "ItemShape")
    fields.wanted_fields(shape)
    if call.op.find(q(M, "QueryString")) is not None:
        raise SoapFault(
            "ErrorUnsupportedQueryFilter",
            "The sandbox does not evaluate QueryString; use CalendarView.",
        )
    wanted = _extended_equals(call.op.find(q(M, "Restriction")))
    view = call.op.find(q(M, "CalendarView"))
    paged = call.op.find(q(M, "IndexedPageItemView"))
    parents = _required(call.op, "ParentFolderIds")
    if view is not None:
        start = fields.parse_datetime(view.get("StartDate"), "StartDate")
        end = fields.parse_datetime(view.get("EndDate"), "EndDate")
    root, messages = _response("FindItem")
    for ref in parents:
        try:
            folder = resolve_folder(call, ref)
            if view is not None and end < start:
                raise ItemError(
                    "ErrorCalendarEndDateIsEarlierThanStartDate",
                    "EndDate is earlier than StartDate",
                )
            if view is not None and end - start > MAX_VIEW:
                raise ItemError(
                    "ErrorCalendarViewRangeTooBig",
                    "The calendar view range is larger than two years.",
                )
        except ItemError as error:
            messages.append(response_message("FindItem", error))
            continue
        found = sorted(
            call.state.items_in(folder),
            key=lambda i: (i.start or dt.datetime.min.replace(tzinfo=dt.UTC), i.id),
        )
        if wanted is not None:
            key, value = wanted
            found = [i for i in found if i.extended.get(key) == value]
        offset, limit = 0, None
        if view is not None:
            found = recurrence.expand(found, start, end)  # occurrences instead of masters
            limit = _int_attr(view, "MaxEntriesReturned")
        elif paged is not None:
            limit = _int_attr(paged, "MaxEntriesReturned")
            offset = _int_attr(paged, "Offset") or 0
            if paged.get("BasePoint", "Beginning") == "End":
                offset = max(0, len(found) - offset - (limit or 0))
        total = len(found)
        page = found[offset : offset + limit if limit else None]
        message = response_message("FindItem")
        last = offset + len(page) >= total
        attrs = {"TotalItemsInView": str(total), "IncludesLastItemInRange": str(last).lower()}
        if view is None:
            attrs["IndexedPagingOffset"] = str(offset + len(page))
        root_folder = ET.SubElement(message, q(M, "RootFolder"), attrs)
        container = ET.SubElement(root_folder, q(T, "Items"))
        for item in page:
            _write(container, call, item, shape)
        messages.append(message)
    return root


def _extended_equals(restriction: ET.Element | None) -> tuple[Any, str] | None:
    """The one restriction the sandbox evaluates: ``IsEqualTo`` an extended property and a
    constant (how a client finds the item it tagged); any other is refused."""
    if restriction is None:
        return None
    children = list(restriction)
    test = children[0] if len(children) == 1 else None
    uri = test.find(q(T, "ExtendedFieldURI")) if test is not None else None
    constant = (
        test.find(f"{q(T, 'FieldURIOrConstant')}/{q(T, 'Constant')}") if uri is not None else None
    )
    if test is None or local(test.tag) != "IsEqualTo" or constant is None or len(test) != 2:
        raise SoapFault(
            "ErrorUnsupportedQueryFilter",
            "The sandbox evaluates only IsEqualTo an extended property and a constant; "
            "use CalendarView.",
        )
    return fields.extended_key(uri), constant.get("Value", "")


def _int_attr(elem: ET.Element, name: str) -> int | None:
    value = elem.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: '{name}' must be a non-negative integer.",
        )
    return number


SEND_INVITATIONS = ("SendToNone", "SendOnlyToAll", "SendToAllAndSaveCopy")


def _check_times(item: CalendarItem) -> None:
    if item.start is None or item.end is None:
        # Exchange fills in defaults; the sandbox refuses, so clients send both explicitly.
        raise ItemError(
            "ErrorInvalidRequest", "The sandbox needs Start and End on a calendar item."
        )
    if item.end < item.start:
        raise ItemError(
            "ErrorCalendarEndDateIsEarlierThanStartDate", "EndDate is earlier than StartDate"
        )


@operation("CreateItem")
def create_item(call: Call) -> ET.Element:
    invitations = call.op.get("SendMeetingInvitations")
    if invitations is not None and invitations not in SEND_INVITATIONS:
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: "
            f"SendMeetingInvitations '{invitations}' is not allowed.",
        )
    target = call.op.find(q(M, "SavedItemFolderId"))
    items = _required(call.op, "Items")

    def one(elem: ET.Element) -> ET.Element:
        if local(elem.tag) != "CalendarItem":
            raise ItemError(
                "ErrorInvalidItemForOperationCreateItem",
                f"The sandbox stores calendar items only, not {local(elem.tag)}.",
            )
        if invitations is None:
            raise ItemError(
                "ErrorSendMeetingInvitationsRequired",
                "SendMeetingInvitations attribute is required for calendar items.",
            )
        folder = (
            resolve_folder(call, target[0])
            if target is not None and len(target)
            else call.acting.folders["calendar"]
        )
        if folder.folder_class != "IPF.Appointment":
            raise ItemError(
                "ErrorCannotCreateCalendarItemInNonCalendarFolder",
                "Calendar items can only be created in a calendar folder.",
            )
        owner = call.state.mailboxes[folder.mailbox]
        item = CalendarItem(new_id(ITEM_PREFIX, owner.email), owner.email, folder.id)
        for child in elem:
            fields.apply_element(item, child)
        _check_times(item)
        if item.is_meeting:
            item.organizer = fields.Attendee(owner.email, owner.name)
        call.state.create(item)
        after_write(call, item, invitations)
        container = ET.Element(q(M, "Items"))
        node = ET.SubElement(container, q(T, "CalendarItem"))
        ET.SubElement(node, q(T, "ItemId"), {"Id": item.id, "ChangeKey": item.change_key})
        return container

    with call.state.lock:
        return _each(call, "CreateItem", items, one)


CONFLICT = ("NeverOverwrite", "AutoResolve", "AlwaysOverwrite")


@operation("UpdateItem")
def update_item(call: Call) -> ET.Element:
    resolution = call.op.get("ConflictResolution", "AutoResolve")
    if resolution not in CONFLICT:
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: "
            f"ConflictResolution '{resolution}' is not allowed.",
        )
    invitations = call.op.get("SendMeetingInvitationsOrCancellations")
    changes = _required(call.op, "ItemChanges")

    def one(change: ET.Element) -> ET.Element:
        ref = change.find(q(T, "ItemId"))
        if ref is None:
            raise SoapFault(
                "ErrorSchemaValidation",
                "The request failed schema validation: ItemChange needs an ItemId.",
            )
        item = _item_for(call, ref)
        if invitations is None:
            raise ItemError(
                "ErrorSendMeetingInvitationsOrCancellationsRequired",
                "SendMeetingInvitationsOrCancellations attribute is required for calendar items.",
            )
        updates = _required(change, "Updates", T)
        touched = _touched(updates)
        key = ref.get("ChangeKey")
        if key and key != item.change_key and resolution != "AlwaysOverwrite":
            since = call.state.changed_since(item, key)
            if since is None or resolution == "NeverOverwrite" or since & touched:
                raise ItemError(
                    "ErrorIrresolvableConflict",
                    "The send or update operation could not be performed because the change key "
                    "passed in the request does not match the current change key for the item.",
                )
        draft = CalendarItem(**{k: v for k, v in vars(item).items()})
        draft.required, draft.optional = list(item.required), list(item.optional)
        draft.resources, draft.extended = list(item.resources), dict(item.extended)
        for update in updates:
            _apply_update(draft, update)
        _check_times(draft)
        if item.master_id:  # an occurrence: kept on its master as an exception
            master = recurrence.change_occurrence(call.state, draft, touched)
            return _updated(item.id, master.change_key)
        vars(item).update(vars(draft))
        if item.is_meeting and item.organizer is None:
            owner = call.state.mailboxes[item.mailbox]
            item.organizer = fields.Attendee(owner.email, owner.name)
        call.state.touched(item, touched)
        after_write(call, item, invitations)
        return _updated(item.id, item.change_key)

    with call.state.lock:
        root = _each(call, "UpdateItem", changes, one)
    # Unwrap the two-element payloads (Items, ConflictResults) into their messages.
    for message in root.iter(q(M, "UpdateItemResponseMessage")):
        for wrapper in message.findall("wrapper"):
            message.remove(wrapper)
            message.extend(list(wrapper))
    return root


def _updated(item_id: str, change_key: str) -> ET.Element:
    container = ET.Element(q(M, "Items"))
    node = ET.SubElement(container, q(T, "CalendarItem"))
    ET.SubElement(node, q(T, "ItemId"), {"Id": item_id, "ChangeKey": change_key})
    conflicts = ET.Element(q(M, "ConflictResults"))
    ET.SubElement(conflicts, q(T, "Count")).text = "0"
    wrapper = ET.Element("wrapper")
    wrapper.extend([container, conflicts])
    return wrapper


def _touched(updates: ET.Element) -> set[str]:
    names = set()
    for update in updates:
        path = update[0] if len(update) else None
        if path is None:
            continue
        names.add(path.get("FieldURI") or repr(sorted(path.attrib.items())))
    return names


def _apply_update(item: CalendarItem, update: ET.Element) -> None:
    kind = local(update.tag)
    if kind not in ("SetItemField", "AppendToItemField", "DeleteItemField") or not len(update):
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: '{kind}' is not an item change.",
        )
    path = update[0]
    if kind == "DeleteItemField":
        if local(path.tag) == "ExtendedFieldURI":
            item.extended.pop(fields.extended_key(path), None)
            return
        name = fields.URI_TO_ELEMENT.get(path.get("FieldURI", ""))
        blank = CalendarItem("", "", "")
        attr = {
            "Subject": "subject",
            "Body": "body",
            "Location": "location",
            "Categories": "categories",
            "RequiredAttendees": "required",
            "OptionalAttendees": "optional",
            "Resources": "resources",
        }.get(name or "")
        if attr is None:
            raise ItemError("ErrorInvalidPropertyDelete", "This property can't be deleted.")
        setattr(item, attr, getattr(blank, attr))
        return
    if len(update) != 2 or local(update[1].tag) != "CalendarItem" or len(update[1]) != 1:
        raise ItemError(
            "ErrorIncorrectUpdatePropertyCount",
            "An object within a change description must contain one and only one "
            "property to modify.",
        )
    if kind == "AppendToItemField":
        raise ItemError("ErrorInvalidPropertyAppend", "The sandbox does not append to properties.")
    fields.apply_element(item, update[1][0])


@operation("DeleteItem")
def delete_item(call: Call) -> ET.Element:
    delete_type = call.op.get("DeleteType", "")
    if delete_type not in ("HardDelete", "SoftDelete", "MoveToDeletedItems"):
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: DeleteType '{delete_type}' is not allowed.",
        )
    cancellations = call.op.get("SendMeetingCancellations")
    ids = _required(call.op, "ItemIds")

    def one(ref: ET.Element) -> None:
        item = _item_for(call, ref)
        if cancellations is None:
            raise ItemError(
                "ErrorSendMeetingCancellationsRequired",
                "SendMeetingCancellations attribute is required for calendar items.",
            )
        if item.master_id:  # an occurrence: one of its master's deleted occurrences
            recurrence.delete_occurrence(call.state, item)
            return None
        call.state.delete(item)
        after_delete(call, item, cancellations)
        return None

    with call.state.lock:
        return _each(call, "DeleteItem", ids, one)


@operation("ConvertId")
def convert_id(call: Call) -> ET.Element:
    """exchangelib's version probe sends ConvertId; the sandbox converts nothing."""
    ids = _required(call.op, "SourceIds")

    def one(_ref: ET.Element) -> None:
        raise ItemError("ErrorInvalidIdMalformed", "Id is malformed.")

    return _each(call, "ConvertId", ids, one)


# A write's side effects (rooms.py answers meeting requests): (state, sandbox, item, how the
# write asked to send invitations / cancellations). The control API's writes call them too.
Hook = Callable[[EwsState, "Sandbox", CalendarItem, str | None], None]
WRITE_HOOKS: list[Hook] = []
DELETE_HOOKS: list[Hook] = []


def after_write(call: Call, item: CalendarItem, invitations: str | None) -> None:
    for hook in WRITE_HOOKS:
        hook(call.state, call.sandbox, item, invitations)


def after_delete(call: Call, item: CalendarItem, cancellations: str | None) -> None:
    for hook in DELETE_HOOKS:
        hook(call.state, call.sandbox, item, cancellations)


@operation("SyncFolderItems")
def sync_folder_items(call: Call) -> ET.Element:
    """Changes to a folder since a sync state (all of its items for none), oldest first."""
    shape = _required(call.op, "ItemShape")
    fields.wanted_fields(shape)
    folder_ref = _required(call.op, "SyncFolderId")
    limit_text = (_required(call.op, "MaxChangesReturned").text or "").strip()
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 512:
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: MaxChangesReturned must be between 1 and 512.",
        )
    limit = int(limit_text)
    token = (call.op.findtext(q(M, "SyncState")) or "").strip()
    root, messages = _response("SyncFolderItems")
    try:
        if len(folder_ref) != 1:
            raise SoapFault(
                "ErrorSchemaValidation",
                "The request failed schema validation: SyncFolderId needs one folder id.",
            )
        folder = resolve_folder(call, folder_ref[0])
        since = 0
        if token:
            known = call.state.sync_states.get(token)
            if known is None or known[0] != folder.id:
                raise ItemError(
                    "ErrorInvalidSyncStateData",
                    "Synchronization state data is corrupt or otherwise invalid.",
                )
            since = known[1]
    except ItemError as error:
        # Exchange's error answer still carries an empty SyncState (clients read it).
        message = response_message("SyncFolderItems", error)
        ET.SubElement(message, q(M, "SyncState"))
        ET.SubElement(message, q(M, "IncludesLastItemInRange")).text = "true"
        messages.append(message)
        return root
    with call.state.lock:
        touched: dict[str, list[tuple[int, str]]] = {}
        for seq, item_id, kind in folder.changes:
            if seq > since:
                touched.setdefault(item_id, []).append((seq, kind))
        report = []
        for item_id, history in touched.items():
            first, last = history[0][1], history[-1][1]
            if last == "Delete":
                if first == "Create":
                    continue  # born and gone between two syncs: nothing to tell
                report.append((history[-1][0], "Delete", item_id))
            else:
                report.append(
                    (history[-1][0], "Create" if first == "Create" else "Update", item_id)
                )
        report.sort()
        page = report[:limit]
        complete = len(page) == len(report)
        newest = folder.changes[-1][0] if folder.changes else 0
        seen = newest if complete else page[-1][0]
        message = response_message("SyncFolderItems")
        ET.SubElement(message, q(M, "SyncState")).text = call.state.issue_sync_state(folder, seen)
        ET.SubElement(message, q(M, "IncludesLastItemInRange")).text = str(complete).lower()
        changes = ET.SubElement(message, q(M, "Changes"))
        for _seq, kind, item_id in page:
            node = ET.SubElement(changes, q(T, kind))
            if kind == "Delete":
                ET.SubElement(node, q(T, "ItemId"), {"Id": item_id})
            else:
                _write(node, call, call.state.items[item_id], shape)
        messages.append(message)
    return root
