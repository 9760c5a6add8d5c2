"""`gridctl grids preview FILE` and `gridctl grids apply FILE [--stamp S]`, run in-process against a copy of the
district with the boundary scenario of :mod:`tests.grids.test_changes`: the preview's numbers, the refusals
(a file with errors, a stale stamp) in clear lines, then the change applied and audited."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from gridctl import main
from tests.grids.test_changes import COMMUNITY, NEW, G, build_scenario, community_frame, fingerprint, grown, write_gpkg


@pytest.fixture(scope="module")
def cli_scenario(database_factory, seeded_engine, tmp_path_factory):
    engine = database_factory("nanhai_changes_cli", copy_of=seeded_engine)
    return engine, build_scenario(engine, tmp_path_factory.mktemp("boundaries_cli"))


@pytest.fixture
def run(monkeypatch, cli_scenario):
    engine, _ = cli_scenario
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


def test_preview_refusals_then_apply(run, cli_scenario, tmp_path):
    engine, scenario = cli_scenario
    before = fingerprint(engine)
    shown = run("grids", "preview", scenario.file)
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert f"新增 / added: 1  {NEW}" in out and f"删除 / removed: 1  {G[8]}" in out
    assert f"调整 / reshaped: 3  {G[1]} {G[2]} {G[6]}" in out and f"改名 / renamed: 1  {G[5]}" in out
    assert "不变 / unchanged: 3" in out
    assert "persons moving: 5" in out and f"{G[2]} → {G[1]}: 2" in out
    assert "open tasks moving: 5（退回重派 / back to dispatch 3）" in out
    assert f"#{scenario.tasks['strip']} escort dispatched {G[2]} → {G[1]} (person)" in out
    assert "staff losing a grid" in out and "checkpoints moving: 1" in out
    stamp = re.search(r"preview stamp: (\S+)", out).group(1)
    assert fingerprint(engine) == before, "a preview writes nothing"

    bad = grown(community_frame(engine), G[3], 0.001)
    bad_file = write_gpkg(bad, tmp_path / "bad.gpkg")
    refused = run("grids", "preview", bad_file)
    assert refused.exit_code == 1 and "overlap" in refused.output and "cannot be applied" in refused.output
    rejected = run("grids", "apply", bad_file)
    assert rejected.exit_code == 1 and "nothing was changed" in rejected.output and "[error] #3" in rejected.output
    stale = run("grids", "apply", scenario.file, "--stamp", "0:0/feedfacefeedface")
    assert stale.exit_code == 1 and "preview the change again" in stale.output and "Traceback" not in stale.output
    assert fingerprint(engine) == before

    applied = run("grids", "apply", scenario.file, "--stamp", stamp)
    assert applied.exit_code == 0, applied.output
    assert "added 1" in applied.output and "persons moved: 5" in applied.output
    assert "open tasks moved: 5（重新派遣 / dispatched again 3）" in applied.output
    with engine.connect() as conn:
        moved = conn.execute(text("SELECT grid_code FROM tasks WHERE id = :id"),
                             {"id": scenario.tasks["strip"]}).scalar_one()
        audit = conn.execute(text("SELECT username, subject, client FROM audit_log WHERE action = 'grids.apply'")).one()
        assert conn.execute(text("SELECT count(*) FROM grids WHERE code = :c"), {"c": G[8]}).scalar_one() == 0
    assert moved == G[1]
    assert audit.username.startswith("gridctl:") and audit.subject.endswith(f"({COMMUNITY})") and \
        audit.client == "gridctl"
    again = run("grids", "apply", scenario.file)
    assert again.exit_code == 0 and "changes nothing" in again.output
