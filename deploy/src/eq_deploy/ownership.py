"""The fields of a live object that one field manager set, read from its managedFields.

Re-applying a whole live object with server-side apply (force) makes the tool the owner of
every field in it: the ones the API server defaulted, and the ones others own, `spec.replicas`
under an HPA first among them (the HPA then fights the tool, and the next deploy that omits
replicas resets them). The automatic rollback re-applies only what the tool itself applied,
the way client-go's `Extract<Kind>` functions do.

FieldsV1 is a tree: `f:<name>` a field, `k:<json>` a list item by its keys, `v:<json>` a
set item by value, `i:<n>` an item by index, `.` the node itself; an empty node is a leaf
(the whole value is owned).
"""

from __future__ import annotations

import json
from typing import Any

Obj = dict[str, Any]


def owned_fields(obj: Obj, manager: str) -> Obj:
    """The part of `obj` that `manager`'s Apply entries own, with apiVersion, kind, name and
    namespace (what an apply needs). Empty apart from those when it owns nothing."""
    fields: Obj = {}
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        if (
            entry.get("manager") == manager
            and entry.get("operation") == "Apply"
            and not entry.get("subresource")
        ):
            _merge(fields, entry.get("fieldsV1") or {})
    out = _extract(obj, fields) if fields else {}  # an empty tree would be a leaf: all
    meta = out.setdefault("metadata", {})
    meta["name"] = obj["metadata"]["name"]
    if obj["metadata"].get("namespace"):
        meta["namespace"] = obj["metadata"]["namespace"]
    out["apiVersion"], out["kind"] = obj.get("apiVersion"), obj.get("kind")
    return out


def _merge(into: Obj, tree: Obj) -> None:
    for key, sub in tree.items():
        _merge(into.setdefault(key, {}), sub)


def _extract(value: Any, tree: Obj) -> Any:
    children = {k: v for k, v in tree.items() if k != "."}
    if not children:
        # A leaf: the whole value. A node owned only as itself (".") keeps its type, empty.
        if "." in tree and isinstance(value, dict | list):
            return type(value)()
        return value
    if isinstance(value, dict):
        out: Obj = {}
        for key, sub in children.items():
            if key.startswith("f:") and key[2:] in value:
                out[key[2:]] = _extract(value[key[2:]], sub)
        return out
    if isinstance(value, list):
        items = []
        for index, item in enumerate(value):
            for key, sub in children.items():
                if _selects(key, index, item):
                    picked = _extract(item, sub)
                    if key.startswith("k:") and isinstance(picked, dict):
                        picked = {**json.loads(key[2:]), **picked}  # the item's keys, always
                    items.append(picked)
                    break
        return items
    return value


def _selects(key: str, index: int, item: Any) -> bool:
    if key.startswith("k:") and isinstance(item, dict):
        wanted = json.loads(key[2:])
        return all(item.get(k) == v for k, v in wanted.items())
    if key.startswith("v:"):
        return bool(json.loads(key[2:]) == item)
    if key.startswith("i:"):
        return key[2:] == str(index)
    return False
