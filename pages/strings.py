"""Every string the pages show, Chinese first, English second; :func:`text` picks one.

>>> text("wall.title", "en")
'Nanhai grid command centre'
"""

from __future__ import annotations

LANGUAGES = ("zh", "en")
STRINGS = {
    "wall.title": ("南海区网格指挥中心", "Nanhai grid command centre"),
    "wall.red": ("红码", "Red"),
    "wall.yellow": ("黄码", "Yellow"),
    "wall.blue": ("蓝码", "Blue"),
    "wall.green": ("绿码", "Green"),
    "wall.open": ("在办任务", "Open tasks"),
    "wall.overdue": ("超时任务", "Overdue"),
    "wall.closed_today": ("今日结案", "Closed today"),
    "wall.on_time": ("今日按期结案率", "On time today"),
    "wall.ticker": ("最新动态", "Latest"),
    "wall.as_of": ("数据时间", "Data as of"),
    "wall.feed_at": ("数据源更新", "Feed updated"),
    "wall.feed_stale": ("数据源超过 24 小时未更新", "No feed for over 24 hours"),
    "wall.refresh_stale": ("刷新中断，请检查网络", "Refresh stopped: check the network"),
    "wall.measure.risk": ("按风险着色（红黄码人数）", "Coloured by risk (red and yellow persons)"),
    "wall.measure.work": ("按工作着色（在办与超时任务）", "Coloured by work (open and overdue tasks)"),
    "wall.none": ("无", "none"),
    "page.login_needed": ("请先登录", "Please log in"),
    "page.other_language": ("English", "中文"),
    "page.forbidden": ("此页面仅限指挥中心", "This page is for the command centre"),
    "page.not_for_role": ("您的角色无权打开此页面，请从上方菜单选择",
                          "Your role may not open this page: pick one above"),
    "app.title": ("南海区网格指挥平台", "Nanhai grid command platform"),
    "nav.wall": ("指挥大屏", "Wall"),
    "nav.dispatch": ("调度台", "Dispatch"),
    "nav.field": ("我的任务", "My tasks"),
    "nav.reports": ("统计报表", "Reports"),
    "nav.people": ("人员查询", "People"),
    "nav.review": ("关联审核", "Linkage review"),
    "nav.audit": ("审计日志", "Audit"),
    "nav.users": ("账号管理", "Accounts"),
    "nav.feeds": ("数据导入", "Data imports"),
    "nav.boundaries": ("网格边界", "Boundaries"),
    "nav.rules": ("研判规则", "Rules"),
    "nav.logout": ("退出", "Log out"),
}


def text(key: str, lang: str = "zh") -> str:
    """The string ``key`` in ``lang`` (Chinese when the language is unknown)."""
    zh, en = STRINGS[key]
    return en if lang == "en" else zh


def one_language(bilingual: str | None, lang: str = "zh") -> str | None:
    """One side of a stored "中文 / English" text (a code's reason or explanation), as the page's language asks;
    a text with no English side is shown whole."""
    if not bilingual or " / " not in bilingual:
        return bilingual
    zh, _, en = bilingual.partition(" / ")
    return en if lang == "en" else zh


def add_strings(strings: dict[str, tuple[str, str]]) -> None:
    """Add a page's own strings (its module calls this at import); a key already taken is a mistake, refused."""
    taken = sorted(set(strings) & set(STRINGS))
    if taken:
        raise ValueError(f"strings defined twice: {', '.join(taken)}")
    STRINGS.update(strings)


def language(cookie: str | None) -> str:
    """The page language from the ``nanhai_lang`` cookie (set by /lang/<code>), else Chinese."""
    chosen = (cookie or "").lower()
    return chosen if chosen in LANGUAGES else "zh"

STRINGS.update({
    "dispatch.queue": ("超时及即将超时", "Overdue and due soon"),
    "dispatch.tasks": ("任务", "Tasks"),
    "dispatch.leads": ("待处理线索", "Open leads"),
    "dispatch.persons": ("重点人员（已脱敏）", "Flagged persons (masked)"),
    "dispatch.grid_timeline": ("网格时间线", "Grid timeline"),
    "dispatch.task_timeline": ("任务时间线", "Task timeline"),
    "dispatch.create": ("新建任务", "New task"),
    "dispatch.create_button": ("创建并派遣", "Create and dispatch"),
    "dispatch.title_placeholder": ("任务标题，如：入户核查体温", "Task title, e.g. home visit"),
    "dispatch.assignee": ("网格员（留空则自动派遣）", "Worker (empty: picked automatically)"),
    "dispatch.reason": ("原因 / 备注", "Reason / note"),
    "dispatch.pick_grid": ("点击地图上的网格，查看人员、线索、任务和时间线",
                           "Click a grid on the map to see its persons, leads, tasks and timeline"),
    "dispatch.pick_task": ("点击一条任务，查看详情、操作和时间线",
                           "Click a task to see it, act on it and read its timeline"),
    "dispatch.none": ("暂无", "None"),
    "dispatch.done": ("已完成：", "Done: "),
    "dispatch.status": ("状态", "Status"),
    "dispatch.all_open": ("全部在办", "All open"),
    "dispatch.triage": ("转为核查任务", "Make a task"),
    "dispatch.dismiss": ("不予处理", "Dismiss"),
    "dispatch.reports": ("次举报", " reports"),
    "dispatch.due": ("时限", "Due"),
    "dispatch.assigned": ("承办人", "Assigned to"),
    "dispatch.unassigned": ("未派遣", "not assigned"),
    "dispatch.extension_asked": ("申请延期至", "Extension asked until"),
    "dispatch.on_duty": ("在岗", "on duty"),
    "dispatch.off_duty": ("不在岗", "off duty"),
    "dispatch.open_tasks": ("件在办", " open"),
    "dispatch.more": ("另有 {n} 条未显示", "{n} more not shown"),
    "dispatch.stale": ("任务已被他人更新，已显示最新状态，请重新操作",
                       "Someone else changed the task: its current state is shown, act again"),
    "dispatch.result": ("处置结果", "Result"),
    "dispatch.temperature": ("体温", "Temperature"),
    "status.created": ("待派遣", "Waiting"),
    "status.dispatched": ("已派遣", "Dispatched"),
    "status.accepted": ("已接收", "Accepted"),
    "status.declined": ("已退回", "Declined"),
    "status.in_progress": ("处置中", "In progress"),
    "status.handled": ("待核查", "Handled"),
    "status.closed": ("已结案", "Closed"),
    "status.cancelled": ("已撤销", "Cancelled"),
    "action.create": ("创建", "Created"),
    "action.dispatch": ("派遣", "Dispatch"),
    "action.reassign": ("改派", "Reassign"),
    "action.accept": ("接收", "Accept"),
    "action.decline": ("退回", "Decline"),
    "action.start": ("开始处置", "Start"),
    "action.handle": ("反馈", "Report"),
    "action.close": ("结案", "Close"),
    "action.rework": ("返工", "Send back"),
    "action.cancel": ("撤销", "Cancel"),
    "action.request_extension": ("申请延期", "Ask for more time"),
    "action.grant_extension": ("批准延期", "Grant extension"),
    "action.refuse_extension": ("驳回延期", "Refuse extension"),
    "action.escalate": ("超时升级", "Escalated"),
    "action.recall": ("收回", "Recalled"),
})

# -- the field view (/field/) ---------------------------------------------------------------------
STRINGS.update({
    "field.title": ("我的任务", "My tasks"),
    "field.empty": ("暂无待办任务", "Nothing to do right now"),
    "field.due": ("时限", "Due"),
    "field.left": ("剩余", "Left"),
    "field.over": ("已超时", "Overdue by"),
    "field.days": ("天", "d"),
    "field.grid": ("网格", "Grid"),
    "field.person": ("对象", "Person"),
    "field.accept": ("接收任务", "Accept"),
    "field.decline": ("退回", "Decline"),
    "field.start": ("开始处置", "Start"),
    "field.handle": ("填写反馈", "Report"),
    "field.waiting": ("已反馈，待网格长核查", "Reported: waiting for the supervisor"),
    "field.declined": ("已退回网格长", "Declined: back with the supervisor"),
    "field.decline_title": ("退回任务", "Decline the task"),
    "field.report_title": ("处置反馈", "Report the visit"),
    "field.reason": ("退回原因", "Reason"),
    "field.result": ("处置结果", "Result"),
    "field.temperature": ("体温（℃）", "Temperature (℃)"),
    "field.temperature_needed": ("（此类任务必填）", " (required for this task)"),
    "field.note": ("备注", "Note"),
    "field.photo": ("现场照片", "Photo"),
    "field.locate": ("获取当前位置", "Use my position"),
    "field.locating": ("正在定位…", "Locating…"),
    "field.no_position": ("无法获取位置，可不带位置提交", "No position: you may send without it"),
    "field.accuracy": ("精度", "accuracy"),
    "field.submit": ("提交", "Send"),
    "field.cancel": ("取消", "Cancel"),
    "field.far": ("距离任务网格约 {m} 米，请确认您在现场", "About {m} m from the task's grid: are you on site?"),
    "field.near": ("距离任务网格约 {m} 米", "About {m} m from the task's grid"),
    "field.inside": ("位于任务网格内", "Inside the task's grid"),
    "field.outbox_pending": ("待发送 {n} 项", "{n} waiting to send"),
    "field.outbox_sending": ("发送中…", "Sending…"),
    "field.outbox_sent": ("已全部发送", "All sent"),
    "field.outbox_offline": ("网络不可用，{n} 项待发送，恢复后自动发送", "Offline: {n} waiting, sent when back"),
    "field.outbox_login": ("登录已过期，请重新登录，{n} 项待发送", "Session expired: log in again; {n} waiting"),
    "field.card_pending": ("待发送", "Waiting to send"),
    "field.card_sent": ("已发送", "Sent"),
    "field.need_result": ("请填写处置结果", "Please fill in the result"),
    "field.need_reason": ("请填写退回原因", "Please give a reason"),
    "field.need_temperature": ("请填写体温", "Please enter the temperature"),
    "field.bad_temperature": ("体温须在 34–43 ℃ 之间", "The temperature must be 34–43 ℃"),
    "field.conflict": ("任务已有变化，当前状态：{s}", "The task has changed; it is now: {s}"),
    "field.refused": ("未能完成：{m}", "Not done: {m}"),
    "field.photo_failed": ("照片未能上传：{m}", "The photo was not uploaded: {m}"),
    "field.status.created": ("待派遣", "Waiting"),
    "field.status.dispatched": ("待接收", "To accept"),
    "field.status.accepted": ("已接收", "Accepted"),
    "field.status.declined": ("已退回", "Declined"),
    "field.status.in_progress": ("处置中", "In progress"),
    "field.status.handled": ("待核查", "Reported"),
    "field.status.closed": ("已结案", "Closed"),
    "field.status.cancelled": ("已撤销", "Cancelled"),
})

# -- the statistics page (/reports/) --
STRINGS.update({
    "reports.title": ("统计报表", "Statistics"),
    "reports.level": ("层级", "Level"),
    "reports.level.district": ("区", "District"),
    "reports.level.town": ("镇街", "Town"),
    "reports.level.community": ("村（社区）", "Community"),
    "reports.level.grid": ("网格", "Grid"),
    "reports.area": ("区域", "Area"),
    "reports.area_all": ("全部（我的范围）", "All (my scope)"),
    "reports.dates": ("日期（北京时间，含首尾）", "Dates (Beijing, inclusive)"),
    "reports.export_csv": ("导出 CSV", "Export CSV"),
    "reports.export_xlsx": ("导出 Excel", "Export Excel"),
    "reports.persons": ("各色码人数", "Persons by colour"),
    "reports.statuses": ("任务状态", "Tasks by status"),
    "reports.indicators": ("考核指标", "Evaluation indicators"),
    "reports.notes": ("统计期内新建的任务；按期结案率把仍在办且已超时的任务计为超期；人数为当前数。"
                      "统计员角色下 1–4 人及可据以推算出它们的人数显示为“*”；“–”表示无分母。",
                      "Tasks created in the period; the on-time rate counts open overdue work as late; persons are "
                      "today's. For the reporter role counts of 1–4 persons, and those from which one could be "
                      "worked out, read “*”; “–”: no denominator."),
    "reports.login_again": ("登录已过期，请重新登录", "Your session has ended: please log in again"),
    "reports.as_of": ("数据时间", "Data as of"),
    "reports.query": ("查询", "Query"),
    "reports.col.name": ("名称", "Name"),
    "reports.col.code": ("代码", "Code"),
    "reports.col.tasks": ("任务数（不含撤销）", "Tasks (not cancelled)"),
    "reports.col.cancelled": ("已撤销", "Cancelled"),
    "reports.col.closed": ("已结案", "Closed"),
    "reports.col.closed_on_time": ("按期结案", "Closed on time"),
    "reports.col.open_overdue": ("在办超时", "Open, overdue"),
    "reports.col.handled": ("已反馈", "Handled"),
    "reports.col.reworked": ("返工", "Reworked"),
    "reports.col.extended": ("延期", "Extended"),
    "reports.col.closure_rate": ("结案率", "Closure rate"),
    "reports.col.on_time_rate": ("按期结案率", "On-time closure rate"),
    "reports.col.rework_rate": ("返工率", "Rework rate"),
    "reports.col.extension_rate": ("延期率", "Extension rate"),
    "reports.col.median_handling_hours": ("处置时长中位数（小时）", "Median handling (h)"),
    "reports.col.p90_handling_hours": ("处置时长90分位（小时）", "90th pct handling (h)"),
    "reports.col.persons_red": ("红码", "Red"),
    "reports.col.persons_yellow": ("黄码", "Yellow"),
    "reports.col.persons_blue": ("蓝码", "Blue"),
    "reports.col.persons_green": ("绿码", "Green"),
    "reports.col.status_created": ("待派遣", "Created"),
    "reports.col.status_dispatched": ("已派遣", "Dispatched"),
    "reports.col.status_accepted": ("已接收", "Accepted"),
    "reports.col.status_declined": ("已退回", "Declined"),
    "reports.col.status_in_progress": ("处置中", "In progress"),
    "reports.col.status_handled": ("待核查", "Handled, to verify"),
    "reports.col.status_closed": ("已结案", "Closed"),
    "reports.col.status_cancelled": ("已撤销", "Cancelled"),
})
