"""Pieces of pages that show tasks, persons, leads and timelines: plain functions from the domain's dicts to Dash
components, so that what a panel shows is tested without a browser.

Times are shown in Beijing time. A countdown is a span carrying its due time
(``data-due``); ``nanhai.countdown`` in ``assets/nanhai.js`` keeps it ticking.
Every string comes from the catalogs in the page's language; names of places
and people, and what people wrote (titles, results, reasons, tip-offs), are
data, shown as stored inside ``nh-name`` elements; stored "中文 / English"
texts are shown in one language (:func:`pages.strings.one_language`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dash import dcc, html
from dash.development.base_component import Component

from pages.shell import data
from pages.strings import has_text, one_language, text
from tasks.kinds import load_kinds
from tasks.lifecycle import NEEDS_REASON, available_actions
from tasks.overview import BEIJING

COLOURS = ("red", "yellow", "blue", "green")
PHOTO_URL = "/api/v1/photos/{id}"  # the API serves a photo to whoever may see its task (tasks.photos.load_photo)
# actions whose button opens a confirmation next to it, with its own reason box where one is needed
CONFIRMED = ("cancel",)


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


def name(value: str | None, extra: str = "") -> html.Span:
    """A name, a code or what someone wrote, shown as stored (the language check passes over ``nh-name``)."""
    return html.Span(value or "", className=f"nh-name {extra}".strip())


def said(value: str | None, lang: str) -> html.Span:
    """A stored text in the page's language (one side of "中文 / English"), else as written."""
    return name(one_language(value, lang))


def grid_label(code: str | None, grid_name: str | None) -> list[Component | str]:
    """A grid as people know it: its name, then its code."""
    if not code:
        return [html.Span("—")]
    shown: list[Component | str] = [name(grid_name, "nh-grid-name"), " "] if grid_name else []
    return [*shown, name(code, "nh-grid-code")]


def countdown(task: dict, lang: str) -> html.Span:
    """Time left to the due time of an open task, ticking in the browser; nothing for finished work."""
    if task["status"] in ("closed", "cancelled") or not task["due_at"]:
        return html.Span()
    return html.Span(local_time(task["due_at"]), className="nh-countdown" + (" nh-late" if task["overdue"] else ""),
                     **{"data-due": task["due_at"], "data-lang": lang})


def task_item(task: dict, lang: str, where: str) -> html.Li:
    """One line of a task list, its full title and its grid's name; clicking it opens the task (the page marks the
    open one: nanhai.dispatch.mark)."""
    classes = "nh-task-item" + (" nh-overdue" if task["overdue"] else "")
    flags = [html.Span(text("dispatch.extension_flag", lang), className="nh-flag nh-flag-extension")] \
        if task.get("extension_requested_until") else []
    return html.Li(className=classes, children=html.Button(
        id={"type": "task-pick", "id": task["id"], "where": where}, className="nh-task-button", children=[
            html.Span(f"#{task['id']}", className="nh-task-id"),
            html.Span(label("status", task["status"], lang), className=f"nh-status nh-status-{task['status']}"),
            name(task["title"], "nh-task-title"),
            html.Span(className="nh-task-meta", children=[
                *grid_label(task["grid_code"], task.get("grid_name")), " · ",
                name(task["assignee_name"] or task.get("assignee")) if task.get("assignee_id")
                else html.Span(text("dispatch.unassigned", lang)), " · ", kind_name(task["kind"], lang)]),
            countdown(task, lang), *flags]))


def task_list(tasks: list[dict], lang: str, where: str) -> html.Ul | html.P:
    """A list of task lines, or 'none'."""
    if not tasks:
        return html.P(text("dispatch.none", lang), className="nh-empty")
    return html.Ul([task_item(t, lang, where) for t in tasks], className="nh-task-list")


def page_label(offset: int, size: int, total: int, lang: str) -> str:
    """'1–25 of 238' in ``lang``."""
    if not total:
        return text("dispatch.page_empty", lang)
    return text("dispatch.page_of", lang).format(first=offset + 1, last=min(offset + size, total), total=total)


def _event_said(event: dict, lang: str) -> list[Component | str]:
    detail = event.get("detail") or {}
    parts: list[Component | str] = []
    for value in (detail.get("reason"), detail.get("result"), event.get("note")):
        if value:
            parts += [said(value, lang), "；" if lang == "zh" else "; "]
    if detail.get("temperature") is not None:
        parts += [f"{text('dispatch.temperature', lang)} {detail['temperature']} ℃", " "]
    if detail.get("far_from_grid_m") is not None:
        parts += [text("dispatch.closed_far", lang).format(m=f"{detail['far_from_grid_m']:,.0f}"), " "]
    return parts[:-1] if parts else []


def plan_event(event: dict, lang: str) -> html.Li:
    """One home-observation plan event (:func:`observation.overview.grid_plan_events`) in a timeline: time, what
    happened to whose plan (masked), who acted, what it says, the task it raised."""
    head: list[Component | str] = [
        html.Span(local_time(event["at"]), className="nh-time"),
        html.Strong(label("dispatch.plan", event["kind"], lang)), " · ", name(event.get("name_masked") or "—")]
    if event.get("actor_name"):
        head += [" · ", name(event["actor_name"], "nh-actor")]
    if event.get("task_id"):
        head.append(html.Span(f" · #{event['task_id']}", className="nh-task-meta"))
    detail = [said(event["detail"], lang)] if event.get("detail") else []
    return html.Li(className=f"nh-event nh-plan-event nh-plan-{event['kind']}", children=[
        html.Div(head), *([html.Div(detail, className="nh-event-said")] if detail else [])])


def timeline(events: list[dict], lang: str, with_task: bool = False) -> html.Ol:
    """Events newest first: time, action, who (his name), and what was said (reason, result, temperature, note).
    Home-observation plan events (marked ``plan``) are drawn by :func:`plan_event` among them, in time order."""
    items = []
    for event in sorted(events, key=lambda e: (e["at"], e["id"]), reverse=True):
        if event.get("plan"):
            items.append(plan_event(event, lang))
            continue
        who = event.get("actor_name") or (text("dispatch.system", lang) if event["actor"] == "system"
                                          else event["actor"])
        head: list[Component | str] = [html.Span(local_time(event["at"]), className="nh-time"),
                                       html.Strong(label("action", event["action"], lang)), " · ",
                                       name(who, "nh-actor")]
        if with_task:
            head += [html.Span(f" · #{event['task_id']} ", className="nh-task-meta"),
                     name(event.get("title", ""), "nh-task-meta")]
        said_parts = _event_said(event, lang)
        items.append(html.Li(className="nh-event", children=[
            html.Div(head), *([html.Div(said_parts, className="nh-event-said")] if said_parts else [])]))
    return html.Ol(items, className="nh-timeline")


def person_table(persons: list[dict], lang: str) -> html.Div | html.P:
    """Flagged persons, masked, under column headers: colour, name, ID, phone, why, since when, how placed."""
    if not persons:
        return html.P(text("dispatch.none", lang), className="nh-empty")
    heads = ("colour", "name", "id", "phone", "reason", "since", "placed")
    rows = [html.Tr([
        html.Td(html.Span(text(f"dispatch.colour.{p['colour']}", lang), className=f"nh-chip nh-chip-{p['colour']}")),
        html.Td(name(p["name_masked"])), html.Td(name(p["id_masked"]), className="nh-mono"),
        html.Td(name(p["phone_masked"]), className="nh-mono"),
        html.Td(said(p["reason"], lang), className="nh-wrap"), html.Td(local_time(p.get("set_at"))),
        html.Td(label("dispatch.method", p["method"], lang) if p.get("method") else "")]) for p in persons]
    return html.Div(className="nh-table-box", children=html.Table(className="nh-table nh-person-table", children=[
        html.Thead(html.Tr([html.Th(text(f"dispatch.person.{h}", lang)) for h in heads])), html.Tbody(rows)]))


def _temperature(value: float | None, fever: bool) -> html.Span:
    return html.Span("—" if value is None else f"{value:.1f} ℃", className="nh-temp" + (" nh-late" if fever else ""))


def follow_up_state(row: dict, lang: str) -> html.Span:
    """A follow-up's state as a chip: lost to follow-up, fever, missed (in a row), or under way."""
    state = "lost" if row["lost"] else "fever" if row["fever"] else "missed" if row["missed_in_a_row"] else "ok"
    return html.Span(text(f"dispatch.follow.{state}", lang), className=f"nh-follow-state nh-follow-{state}")


def follow_up_table(rows: list[dict], lang: str) -> html.Div | html.P:
    """A grid's persons in observation (:func:`observation.overview.grid_follow_ups`), masked, under column
    headers: person, day n of N, last report and temperature, misses (in a row), next check, state."""
    if not rows:
        return html.P(text("dispatch.none", lang), className="nh-empty")
    heads = ("person", "day", "last", "temperature", "misses", "next", "state")
    body = [html.Tr(**data(plan=r["plan_id"]), className="nh-follow-row" + (" nh-overdue" if r["lost"] else ""),
                    children=[
        html.Td([name(r["name_masked"]), " ", name(r["id_masked"], "nh-mono")]),
        html.Td(text("dispatch.follow.day_of", lang).format(n=r["day"], total=r["days"])),
        html.Td(local_time(r["last_report_at"]) or text("dispatch.follow.never", lang)),
        html.Td(_temperature(r["last_temperature"], r["fever"])),
        html.Td(text("dispatch.follow.misses_of", lang).format(total=r["missed"], row=r["missed_in_a_row"])
                if r["missed"] else "0"),
        html.Td(local_time(r["next_due_at"])), html.Td(follow_up_state(r, lang))]) for r in rows]
    return html.Div(className="nh-table-box", children=html.Table(className="nh-table nh-follow-table", children=[
        html.Thead(html.Tr([html.Th(text(f"dispatch.follow.{h}", lang)) for h in heads])), html.Tbody(body)]))


def lost_list(rows: list[dict], total: int, lang: str) -> html.Div:
    """The persons lost to follow-up (:func:`observation.overview.lost_to_follow_up`), longest silent first:
    each masked, his grid (clicking opens it), since when nothing came; how many in all when more are left out."""
    if not rows:
        return html.Div(html.P(text("dispatch.none", lang), className="nh-empty"), className="nh-lost")
    items = [html.Li(className="nh-lost-item", children=html.Button(
        id={"type": "lost-pick", "plan": r["plan_id"], "grid": r["grid_code"] or ""}, className="nh-lost-button",
        children=[name(r["name_masked"] or "—"), " · ", *grid_label(r["grid_code"], r["grid_name"]), " · ",
                  html.Span(text("dispatch.follow.silent", lang).format(hours=f"{r['silent_hours']:.0f}"),
                            className="nh-countdown nh-late"),
                  " ", html.Span(local_time(r["last_report_at"]) or text("dispatch.follow.never", lang),
                                 className="nh-time")])) for r in rows]
    more = [html.P(page_label(0, len(rows), total, lang), className="nh-more")] if total > len(rows) else []
    return html.Div(className="nh-lost", children=[html.Ul(items, className="nh-lost-list"), *more])


def lead_item(lead: dict, lang: str) -> html.Li:
    """One lead in a list: when it was last reported, what, where, how often; clicking opens its detail."""
    return html.Li(className="nh-lead", children=html.Button(
        id={"type": "lead-pick", "id": lead["id"]}, className="nh-lead-button", children=[
            html.Span(f"#{lead['id']}", className="nh-task-id"),
            html.Span(local_time(lead["last_reported_at"]), className="nh-time"),
            html.Span(f"{lead['report_count']}{text('dispatch.reports', lang)}", className="nh-lead-count"),
            name(lead["summary"], "nh-lead-summary"),
            html.Span(grid_label(lead.get("grid_code"), lead.get("grid_name")), className="nh-task-meta")]))


def lead_list(leads: list[dict], lang: str) -> html.Ul | html.P:
    """Leads, newest report first, or 'none'."""
    if not leads:
        return html.P(text("dispatch.none", lang), className="nh-empty")
    return html.Ul([lead_item(lead, lang) for lead in leads], className="nh-lead-list")


def note(message: dict | None, where: str, subject: int | str | None) -> html.Div:
    """The outcome of the last action, shown next to its buttons when it was taken on this panel's subject."""
    shown = message if message and message.get("where") == where and message.get("subject") == subject else None
    return html.Div(className="nh-note", role="status", children=None if shown is None else html.P(
        shown["text"], className="nh-ok" if shown["ok"] else "nh-error"))


def _confirm(summary: str, warning: Component | str | None, fields: list[Component], button: html.Button,
             klass: str) -> html.Details:
    """A button that opens, next to itself, what must be read or written before the action is sent."""
    return html.Details(className=f"nh-confirm {klass}", children=[
        html.Summary(summary, className=f"nh-button {klass}"),
        html.Div(className="nh-confirm-body", children=[
            *([html.P(warning, className="nh-warning")] if warning else []), *fields, button])])


def lead_detail(lead: dict, lang: str, actionable: bool, message: dict | None = None) -> html.Div:
    """A lead: when first and last reported, where, and every report merged into it (contacts masked); for a
    supervisor, make a task of it, or dismiss it with a reason (asked next to the button)."""
    facts: list[tuple[str, Any]] = [(text("dispatch.lead_status", lang), label("dispatch.lead", lead["status"], lang)),
             (text("dispatch.first_reported", lang), local_time(lead["first_reported_at"])),
             (text("dispatch.last_reported", lang), local_time(lead["last_reported_at"])),
             (text("dispatch.grid", lang), html.Span(grid_label(lead.get("grid_code"), lead.get("grid_name")))),
             (text("dispatch.address", lang), name(lead.get("address") or "—"))]
    dismissal = lead.get("dismissal")
    if dismissal:
        facts.append((text("dispatch.dismissed_by", lang), html.Span([
            name(dismissal["by"]), f" · {local_time(dismissal['at'])} · ", said(dismissal["reason"], lang)])))
    buttons: list[Component] = []
    if actionable and lead["status"] == "open":
        buttons = [
            html.Button(text("dispatch.triage", lang), className="nh-button nh-lead-triage",
                        id={"type": "lead-act", "action": "triage", "id": lead["id"]}),
            _confirm(text("dispatch.dismiss", lang), text("dispatch.dismiss_ask", lang), [
                dcc.Textarea(id={"type": "form", "name": "dismiss_reason"}, className="nh-textarea",
                             placeholder=text("dispatch.dismiss_reason", lang))],
                html.Button(text("dispatch.dismiss_confirm", lang), className="nh-button nh-lead-dismiss",
                            id={"type": "lead-act", "action": "dismiss", "id": lead["id"]}), "nh-secondary")]
    reports = [html.Li(className="nh-lead-report", children=[
        html.Div([html.Span(local_time(r["received_at"]), className="nh-time"),
                  html.Span(label("dispatch.channel", r["channel"], lang), className="nh-status"), " ",
                  name(r.get("contact") or "")]),
        html.Div(name(r["description"]), className="nh-wrap"),
        *([html.Div(name(r["address"]), className="nh-task-meta")] if r.get("address") else [])])
        for r in lead.get("reports", [])]
    return html.Div(className="nh-lead-detail", id="lead-detail", children=[
        html.H3([f"{text('dispatch.lead_title', lang)} #{lead['id']}"]),
        html.P(name(lead["summary"]), className="nh-wrap"),
        html.Dl([part for key, value in facts for part in (html.Dt(key), html.Dd(value))], className="nh-facts"),
        html.Div(buttons, className="nh-buttons"), note(message, "lead", lead["id"]),
        html.H4(text("dispatch.lead_reports", lang).format(n=len(reports))),
        html.Ol(reports, className="nh-lead-reports")])


def evidence(task: dict, lang: str) -> html.Section | None:
    """The worker's latest report: result, temperature, photos (thumbnails that enlarge on click), where he made
    it and how far that is from the grid, flagged when far; None before he reports."""
    report = task.get("report")
    if not report:
        return None
    metres, far = report.get("distance_m"), report.get("far")
    if metres is None:
        where = html.Span(text("dispatch.no_position", lang), className="nh-distance nh-unknown")
    elif metres == 0:
        where = html.Span(text("dispatch.inside_grid", lang), className="nh-distance nh-near")
    else:
        where = html.Span(text("dispatch.far" if far else "dispatch.near", lang).format(m=f"{metres:,.0f}"),
                          className="nh-distance " + ("nh-far" if far else "nh-near"))
    photos = [html.Button(className="nh-photo", title=text("dispatch.photo_enlarge", lang), children=html.Img(
        src=PHOTO_URL.format(id=p), className="nh-photo-thumb", alt=f"{text('dispatch.photo', lang)} {p}",
        **data(full=PHOTO_URL.format(id=p)))) for p in report["photos"]]
    facts: list[tuple[str, Any]] = [(text("dispatch.result", lang), said(report.get("result"), lang)),
             (text("dispatch.temperature", lang),
              "—" if report.get("temperature") is None else f"{report['temperature']} ℃"),
             (text("dispatch.reported", lang), html.Span([local_time(report["at"]), " · ", name(report["by"])])),
             (text("dispatch.position", lang), where)]
    if report.get("note"):
        facts.append((text("dispatch.note", lang), said(report["note"], lang)))
    return html.Section(className="nh-evidence" + (" nh-evidence-far" if far else ""), id="task-evidence", children=[
        html.H4(text("dispatch.evidence", lang)),
        *([html.P(text("dispatch.far_flag", lang), className="nh-far-flag")] if far else []),
        html.Dl([part for key, value in facts for part in (html.Dt(key), html.Dd(value))], className="nh-facts"),
        html.Div(photos, className="nh-photos") if photos else html.P(text("dispatch.no_photo", lang),
                                                                       className="nh-empty")])


def _action_button(action: str, task: dict, lang: str, confirm: int = 0) -> html.Button:
    return html.Button(label("action", action, lang) if not confirm else text(f"dispatch.confirm_{action}", lang),
                       className=f"nh-button nh-action-{action}" + (" nh-confirmed" if confirm else ""),
                       id={"type": "task-act", "action": action, "task": task["id"], "version": task["version"],
                           "confirm": confirm})


def task_detail(task: dict, role: str, workers: list[dict], lang: str, message: dict | None = None) -> html.Div:
    """A task: what, where, who, due; the worker's report as evidence; the actions ``role`` may take now (with a
    worker list and a reason box when an action needs them; closing a report made far from the grid, and
    cancelling, are confirmed next to their button); and its timeline with people's names."""
    actions = available_actions(task["status"], role, task["extension_requested_until"] is not None)
    names = [a.name for a in actions]
    report = task.get("report") or {}
    controls: list[Component] = []
    if any(a in ("dispatch", "reassign") for a in names):
        controls.append(dcc.Dropdown(id={"type": "form", "name": "assignee"}, className="nh-assignee",
                                     placeholder=text("dispatch.assignee", lang), options=[
            {"label": f"{w['display_name'] or w['username']} · {', '.join(w['grid_codes'])} · "
                      f"{text('dispatch.on_duty' if w['on_duty'] else 'dispatch.off_duty', lang)} · "
                      f"{w['open_tasks']}{text('dispatch.open_tasks', lang)}", "value": w["id"]}
            for w in workers if w["id"] != task["assignee_id"]]))
    if any(a in NEEDS_REASON and a not in CONFIRMED for a in names):
        controls.append(dcc.Textarea(id={"type": "form", "name": "reason"}, placeholder=text("dispatch.reason", lang),
                                     className="nh-textarea"))
    buttons: list[Component] = []
    for action in names:
        if action == "close" and report.get("far"):
            buttons.append(_confirm(label("action", "close", lang), text("dispatch.close_far_ask", lang).format(
                m=f"{report['distance_m']:,.0f}"), [], _action_button("close", task, lang, 1), "nh-action-close"))
        elif action == "cancel":
            buttons.append(_confirm(label("action", "cancel", lang), text("dispatch.cancel_ask", lang), [
                dcc.Textarea(id={"type": "form", "name": "cancel_reason"}, className="nh-textarea",
                             placeholder=text("dispatch.cancel_reason", lang))],
                _action_button("cancel", task, lang, 1), "nh-action-cancel"))
        else:
            buttons.append(_action_button(action, task, lang))
    assignee = name(task["assignee_name"] or task.get("assignee")) if task.get("assignee_id") \
        else text("dispatch.unassigned", lang)
    facts: list[tuple[str, Any]] = [
        (text("dispatch.status", lang), label("status", task["status"], lang)),
        (text("dispatch.grid", lang), html.Span(grid_label(task["grid_code"], task.get("grid_name")))),
        (text("dispatch.assigned", lang), assignee),
        (text("dispatch.due", lang), local_time(task["due_at"]))]
    if task["extension_requested_until"]:
        facts.append((text("dispatch.extension_asked", lang), local_time(task["extension_requested_until"])))
    if task.get("person"):
        person = task["person"]
        facts.append((text("dispatch.person", lang), html.Span([
            name(f"{person['name_masked'] or ''} {person['id_masked'] or ''}"), " ",
            html.Span(text(f"dispatch.colour.{person['colour']}", lang), className=f"nh-chip nh-chip-"
                      f"{person['colour']}") if person["colour"] else ""])))
    return html.Div(className="nh-task-detail", id="task-detail", children=[
        html.H3([f"#{task['id']} ", name(task["title"])]),
        html.Div(kind_name(task["kind"], lang), className="nh-task-meta"),
        html.Dl([part for key, value in facts for part in (html.Dt(key), html.Dd(value))], className="nh-facts"),
        countdown(task, lang),
        html.P(said(task["detail"], lang), className="nh-wrap") if task.get("detail") else None,
        evidence(task, lang),
        *controls,
        html.Div(className="nh-buttons", children=buttons),
        note(message, "task", task["id"]),
        html.H4(text("dispatch.task_timeline", lang)),
        timeline(task.get("events", []), lang),
    ])
