"""Pieces of pages that show tasks, persons, leads and timelines: plain functions from the domain's dicts to Dash
components, so that what a panel shows is tested without a browser.

Times are shown in Beijing time. A countdown is a span carrying its due time
(``data-due``); ``nanhai.countdown`` in ``assets/nanhai.js`` keeps it ticking.
"""

from __future__ import annotations

from datetime import datetime

from dash import dcc, html
from dash.development.base_component import Component

from pages.strings import has_text, text
from tasks.kinds import load_kinds
from tasks.lifecycle import NEEDS_REASON, available_actions
from tasks.overview import BEIJING

COLOURS = ("red", "yellow", "blue", "green")


def local_time(iso: str | None) -> str:
    """``MM-DD HH:MM`` in Beijing time of an ISO timestamp ('' for none)."""
    return datetime.fromisoformat(iso).astimezone(BEIJING).strftime("%m-%d %H:%M") if iso else ""


def label(prefix: str, key: str, lang: str) -> str:
    """The shown name of a status or an action (the raw key when the strings do not know it)."""
    return text(f"{prefix}.{key}", lang) if has_text(f"{prefix}.{key}") else key


def kind_name(code: str, lang: str) -> str:
    """A task kind's name in ``lang``."""
    kind = load_kinds().get(code)
    return code if kind is None else (kind.name_en if lang == "en" else kind.name)


def countdown(task: dict, lang: str) -> html.Span:
    """Time left to the due time of an open task, ticking in the browser; nothing for finished work."""
    if task["status"] in ("closed", "cancelled") or not task["due_at"]:
        return html.Span()
    return html.Span(local_time(task["due_at"]), className="nh-countdown" + (" nh-late" if task["overdue"] else ""),
                     **{"data-due": task["due_at"], "data-lang": lang})


def task_item(task: dict, lang: str, where: str) -> html.Li:
    """One line of a task list; clicking it opens the task (the page marks the open one: nanhai.dispatch.mark)."""
    classes = "nh-task-item" + (" nh-overdue" if task["overdue"] else "")
    return html.Li(className=classes, children=html.Button(
        id={"type": "task-pick", "id": task["id"], "where": where}, className="nh-task-button", children=[
            html.Span(f"#{task['id']}", className="nh-task-id"),
            html.Span(label("status", task["status"], lang), className=f"nh-status nh-status-{task['status']}"),
            html.Span(task["title"], className="nh-task-title"),
            html.Span(f"{task['grid_code']} · {task['assignee_name'] or text('dispatch.unassigned', lang)}",
                      className="nh-task-meta"),
            countdown(task, lang)]))


def task_list(tasks: list[dict], lang: str, where: str, total: int | None = None) -> html.Ul | html.P:
    """A list of task lines, or 'none'; says how many more there are when the list is cut."""
    if not tasks:
        return html.P(text("dispatch.none", lang), className="nh-empty")
    items = [task_item(t, lang, where) for t in tasks]
    if total is not None and total > len(tasks):
        items.append(html.Li(text("dispatch.more", lang).format(n=total - len(tasks)), className="nh-more"))
    return html.Ul(items, className="nh-task-list")


def timeline(events: list[dict], lang: str, with_task: bool = False) -> html.Ol:
    """Events newest first: time, action, who, and what was said (reason, result, temperature, note)."""
    items = []
    for event in sorted(events, key=lambda e: (e["at"], e["id"]), reverse=True):
        detail = event.get("detail") or {}
        said = [detail.get("reason"), detail.get("result"), event.get("note")]
        if detail.get("temperature") is not None:
            said.append(f"{text('dispatch.temperature', lang)} {detail['temperature']} ℃")
        head: list[Component | str] = [html.Span(local_time(event["at"]), className="nh-time"),
                                       html.Strong(label("action", event["action"], lang)), f" · {event['actor']}"]
        if with_task:
            head.append(html.Span(f" · #{event['task_id']} {event.get('title', '')}", className="nh-task-meta"))
        items.append(html.Li(className="nh-event", children=[
            html.Div(head), *([html.Div("；".join(s for s in said if s), className="nh-event-said")]
                              if any(said) else [])]))
    return html.Ol(items, className="nh-timeline")


def person_table(persons: list[dict], lang: str) -> html.Table | html.P:
    """Flagged persons, masked: colour, name, ID, phone, reason, how placed."""
    if not persons:
        return html.P(text("dispatch.none", lang), className="nh-empty")
    return html.Table(className="nh-table", children=[html.Tbody([html.Tr([
        html.Td(html.Span(text(f"wall.{p['colour']}", lang), className=f"nh-chip nh-chip-{p['colour']}")),
        html.Td(p["name_masked"]), html.Td(p["id_masked"]), html.Td(p["phone_masked"]),
        html.Td(p["reason"], className="nh-wrap")]) for p in persons])])


def lead_item(lead: dict, lang: str, actionable: bool) -> html.Li:
    """One open lead: what was reported, where, how often; with triage buttons for a supervisor."""
    buttons = [html.Button(text("dispatch.triage", lang), className="nh-button",
                           id={"type": "lead-act", "action": "triage", "id": lead["id"]}),
               html.Button(text("dispatch.dismiss", lang), className="nh-button nh-secondary",
                           id={"type": "lead-act", "action": "dismiss", "id": lead["id"]})] if actionable else []
    return html.Li(className="nh-lead", children=[
        html.Div([html.Strong(f"#{lead['id']} "), lead["summary"]]),
        html.Div(f"{lead.get('address') or ''} · {lead.get('grid_code') or '—'} · {lead['report_count']}"
                 f"{text('dispatch.reports', lang)}", className="nh-task-meta"),
        html.Div(buttons, className="nh-buttons")])


def task_detail(task: dict, role: str, workers: list[dict], lang: str) -> html.Div:
    """A task: what, where, who, due; the actions ``role`` may take now (with a worker list and a reason box when
    an action needs them); and its timeline."""
    actions = available_actions(task["status"], role, task["extension_requested_until"] is not None)
    version = task["version"]
    controls: list[Component] = []
    if any(a.name in ("dispatch", "reassign") for a in actions):
        controls.append(dcc.Dropdown(id={"type": "form", "name": "assignee"}, placeholder=text("dispatch.assignee",
                                                                                                 lang), options=[
            {"label": f"{w['display_name'] or w['username']} · {', '.join(w['grid_codes'])} · "
                      f"{text('dispatch.on_duty' if w['on_duty'] else 'dispatch.off_duty', lang)} · "
                      f"{w['open_tasks']}{text('dispatch.open_tasks', lang)}", "value": w["id"]}
            for w in workers if w["id"] != task["assignee_id"]]))
    if any(a.name in NEEDS_REASON for a in actions):
        controls.append(dcc.Textarea(id={"type": "form", "name": "reason"}, placeholder=text("dispatch.reason", lang),
                                     className="nh-textarea"))
    facts = [(text("dispatch.status", lang), label("status", task["status"], lang)),
             (text("dispatch.assigned", lang), task["assignee_name"] or text("dispatch.unassigned", lang)),
             (text("dispatch.due", lang), local_time(task["due_at"]))]
    if task["extension_requested_until"]:
        facts.append((text("dispatch.extension_asked", lang), local_time(task["extension_requested_until"])))
    if task.get("person"):
        person = task["person"]
        facts.append(("", f"{person['name_masked'] or ''} {person['id_masked'] or ''} "
                          f"{text('wall.' + person['colour'], lang) if person['colour'] else ''}"))
    return html.Div(className="nh-task-detail", id="task-detail", children=[
        html.H3(f"#{task['id']} {task['title']}"),
        html.Div(f"{kind_name(task['kind'], lang)} · {task['grid_code']}", className="nh-task-meta"),
        html.Dl([part for name, value in facts for part in (html.Dt(name), html.Dd(value))], className="nh-facts"),
        countdown(task, lang),
        html.P(task["detail"], className="nh-wrap") if task.get("detail") else None,
        *controls,
        html.Div(className="nh-buttons", children=[
            html.Button(label("action", a.name, lang), className=f"nh-button nh-action-{a.name}",
                        id={"type": "task-act", "action": a.name, "task": task["id"], "version": version})
            for a in actions]),
        html.H4(text("dispatch.task_timeline", lang)),
        timeline(task.get("events", []), lang),
    ])
