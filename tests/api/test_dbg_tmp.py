import json
def test_dbg(work_engine):
    from app import create_app
    from tests.conftest import Clock
    c = create_app(work_engine, Clock()).server.test_client()
    r = c.post("/api/v1/session", json={"username": "demo_reporter", "password": "demo-password-1"})
    for q in ("level=grid&area=440605011001&from=2026-11-01&to=2026-11-30", "level=grid&area=440605011001", "level=town"):
        body = c.get("/api/v1/stats?" + q).get_json()
        print(q, json.dumps(body["rows"][:3], ensure_ascii=False))
    from sqlalchemy import text
    with work_engine.connect() as conn:
        print(conn.execute(text("SELECT code, name FROM grids WHERE code LIKE '440605011001%' ORDER BY code")).all())
