"""Dash callback requests as a page sends them, built from its ``_dash-dependencies``: the tests of every page's
role checks post them with forged values, as a hostile client would."""

from __future__ import annotations

import json


def outputs_of(output: str) -> list[dict] | dict:
    """The ``outputs`` of a callback request, from its ``output`` key (``@hash`` of a duplicate output dropped)."""
    def one(part: str) -> dict:
        name, prop = part.rsplit(".", 1)
        return {"id": json.loads(name) if name.startswith("{") else name, "property": prop.split("@")[0]}
    return [one(part) for part in output[2:-2].split("...")] if output.startswith("..") else one(output)


def prop_id(item: dict) -> str:
    """``id.property`` as Dash names a changed property (a pattern-matching id as compact sorted JSON)."""
    key = item["id"]
    name = json.dumps(key, separators=(",", ":"), sort_keys=True) if isinstance(key, dict) else key
    return f"{name}.{item['property']}"


def pattern(kind: str, *wild: str) -> str:
    """The dependency id of a pattern-matching input of ``kind`` whose ``wild`` keys are ALL."""
    return json.dumps({"type": kind, **{name: ["ALL"] for name in wild}}, separators=(",", ":"), sort_keys=True)


def request_body(dependency: dict, values: dict) -> dict:
    """A callback request as the page sends it, each input and state valued from ``values`` (``id.property``; a
    pattern-matching one: a list of (concrete id, value)); the first input is the one that changed."""
    def fill(items: list[dict]) -> list:
        filled: list = []
        for item in items:
            key = f"{item['id']}.{item['property']}"
            if item["id"].startswith("{"):
                filled.append([{"id": concrete, "property": item["property"], "value": value}
                               for concrete, value in values.get(key, [])])
            else:
                filled.append({"id": item["id"], "property": item["property"], "value": values.get(key)})
        return filled

    inputs = fill(dependency["inputs"])
    first = inputs[0][0] if isinstance(inputs[0], list) else inputs[0]
    return {"output": dependency["output"], "outputs": outputs_of(dependency["output"]), "inputs": inputs,
            "state": fill(dependency["state"]), "changedPropIds": [prop_id(first)]}
