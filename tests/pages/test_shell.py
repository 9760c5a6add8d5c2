"""Login lands each role on its own page; the menu lists only the pages the role may open; log-out ends the
session, and a foreign site cannot log anybody out."""

import json
import re

import pytest

from app import create_app
from pages.shell import DISPATCH, FIELD, PAGES, REPORTS, WALL, home_for, pages_for
from tests.conftest import DEMO_PASSWORD


@pytest.fixture(scope="module")
def server(work_engine):
    return create_app(work_engine).server


def _log_in(client, username: str):
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    return client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "next": "/",
                                       "form_token": token})


@pytest.mark.parametrize(("username", "home"), [("demo_commander", WALL), ("demo_supervisor", DISPATCH),
                                                ("demo_worker", FIELD), ("demo_reporter", REPORTS),
                                                ("demo_admin", DISPATCH)])
def test_each_role_lands_on_its_own_page_and_sees_only_its_menu(server, username, home):
    client = server.test_client()
    answer = _log_in(client, username)
    assert answer.status_code == 303 and answer.headers["Location"] == home.path
    assert client.get("/").headers["Location"] == home.path
    layout = json.dumps(client.get(f"{home.path}_dash-layout").get_json(), ensure_ascii=False)
    role = client.get("/api/v1/session").get_json()["role"]
    if home not in (WALL, FIELD):  # the wall has no menu: nobody touches it
        for page in PAGES:
            assert (f'"href": "{page.path}"' in layout) == (role in page.roles), page.key


def test_the_page_table_is_consistent():
    for role in ("commander", "supervisor", "worker", "reporter", "admin"):
        assert home_for(role) in [page.path for page in pages_for(role)]
    assert [p.key for p in pages_for("worker")] == ["field"]


def test_log_out_ends_the_session_and_a_foreign_origin_cannot(server):
    client = server.test_client()
    _log_in(client, "demo_worker")
    forged = client.post("/logout", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and "Set-Cookie" not in forged.headers
    assert client.get("/api/v1/session").status_code == 200, "a cross-site post logs nobody out"
    assert client.post("/logout").headers["Location"] == "/login"
    assert client.get("/api/v1/session").status_code == 401


def test_the_language_switch_remembers_the_choice_and_stays_on_the_site(server):
    client = server.test_client()
    answer = client.get("/lang/en?next=/wall/")
    assert answer.status_code == 303 and answer.headers["Location"] == "/wall/"
    assert "nanhai_lang=en" in answer.headers["Set-Cookie"]
    assert client.get("/lang/en?next=https://evil.example/").headers["Location"] == "/"
    assert "Set-Cookie" not in client.get("/lang/xx?next=/").headers


def test_a_page_says_its_language_and_has_its_title_in_it(server):
    client = server.test_client()
    _log_in(client, "demo_supervisor")
    zh = client.get("/people/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in zh and "<title>人员查询</title>" in zh and 'id="nh-page-strings"' in zh
    client.set_cookie("nanhai_lang", "en")
    en = client.get("/people/").get_data(as_text=True)
    assert '<html lang="en">' in en and "<title>People</title>" not in zh
    title = re.search(r"<title>([^<]*)</title>", en).group(1)
    assert title.isascii() and title, title
    strings = json.loads(re.search(r'id="nh-page-strings">([^<]*)</script>', en).group(1))
    assert strings["zoom_in"] == "Zoom in"


def test_the_nav_bar_shows_the_role_in_the_page_language_and_the_name_as_data():
    from accounts.actor import Actor
    from pages.shell import PEOPLE, nav_bar

    actor = Actor(1, "demo_supervisor", "supervisor", display_name="演示网格长")
    bar = json.dumps(nav_bar(actor, "en", PEOPLE).to_plotly_json(), default=lambda c: c.to_plotly_json(),
                     ensure_ascii=False)
    assert " · Grid supervisor" in bar and " · 网格长" not in bar and '"nh-name"' in bar
    assert '"lang": "zh"' in bar  # the switch to Chinese says it is Chinese
