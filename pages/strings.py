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
    "nav.logout": ("退出", "Log out"),
}


def text(key: str, lang: str = "zh") -> str:
    """The string ``key`` in ``lang`` (Chinese when the language is unknown)."""
    zh, en = STRINGS[key]
    return en if lang == "en" else zh


def language(cookie: str | None) -> str:
    """The page language from the ``nanhai_lang`` cookie (set by /lang/<code>), else Chinese."""
    chosen = (cookie or "").lower()
    return chosen if chosen in LANGUAGES else "zh"
