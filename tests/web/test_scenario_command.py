"""``manage.py scenario KIND TARGET [--minutes N]`` against a real emulator over HTTPS: it fetches the
token itself from the connection file and starts the scenario through the control API."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


@pytest.fixture
def emu(make_emulator):
    return make_emulator(seed=4, groups=4, workers=10, scenarios=False)


def largest_group(emu):
    return max(emu.simulation.groups, key=lambda g: len(g.members))


def test_it_starts_a_scenario_on_a_group(emu):
    group = largest_group(emu)
    out = StringIO()
    call_command("scenario", "site_down", group.name, "--minutes", "20",
                 "--connection-file", str(emu.connection_file), stdout=out)
    view = emu.simulation.scenarios_view()
    assert [(s["kind"], s["target"], s["state"], s["minutes"], s["source"]) for s in view] == [
        ("site_down", group.name, "active", 20, "api")]
    members = [emu.simulation.workers[i].name for i in group.members]
    assert view[0]["workers"] == members
    assert f"Started site_down on {group.name} for 20 minutes" in out.getvalue()
    assert f"{len(members)} workers: {members[0]}" in out.getvalue()


def test_it_reads_the_demo_connection_file_by_default(emu, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    (tmp_path / "emulator.json").write_text(emu.connection_file.read_text())
    worker = emu.simulation.workers[0].name
    call_command("scenario", "agent_stopped", worker, stdout=StringIO())
    assert [(s["kind"], s["target"], s["minutes"]) for s in emu.simulation.scenarios_view()] == [
        ("agent_stopped", worker, 20)]


@pytest.mark.parametrize(("kind", "target", "minutes", "says"), [
    ("meteor", "hrw-win-03", "5", "unknown scenario kind 'meteor'"),
    ("agent_stopped", "nobody", "5", "nobody"),
    ("agent_stopped", "TARGET", "-1", "minutes must be a number"),
])
def test_the_emulator_refusal_is_shown_as_a_command_error(emu, kind, target, minutes, says):
    target = emu.simulation.workers[0].name if target == "TARGET" else target
    with pytest.raises(CommandError, match="refused it \\(400\\)") as info:
        call_command("scenario", kind, target, "--minutes", minutes, "--connection-file", str(emu.connection_file))
    assert says in str(info.value)
    assert emu.simulation.scenarios_view() == []


def test_a_missing_connection_file_says_to_start_the_demo(tmp_path):
    with pytest.raises(CommandError, match="start the demo first"):
        call_command("scenario", "site_down", "hrw-win-dmz", "--connection-file", str(tmp_path / "emulator.json"))


def test_a_wrong_secret_is_refused_by_the_token_route(emu, tmp_path):
    conn = json.loads(emu.connection_file.read_text()) | {"client_secret": "wrong"}
    conn["ca_bundle"] = emu.ca_bundle
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps(conn))
    with pytest.raises(CommandError, match="token route refused it \\(40[01]\\)"):
        call_command("scenario", "site_down", largest_group(emu).name, "--connection-file", str(path))
    assert emu.simulation.scenarios_view() == []


def test_an_emulator_that_is_gone_is_a_clear_error(make_emulator, tmp_path):
    gone = make_emulator(seed=4, groups=2, workers=4, scenarios=False)
    path = tmp_path / "emulator.json"
    conn = json.loads(gone.connection_file.read_text())
    conn["ca_bundle"] = gone.ca_bundle
    path.write_text(json.dumps(conn))
    gone.close()
    with pytest.raises(CommandError, match="cannot reach the emulator's token route .*is the demo running"):
        call_command("scenario", "site_down", "hrw-win-dmz", "--connection-file", str(path))
