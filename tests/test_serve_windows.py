"""A closed window's files are written relative to folders held open, never by a path checked
first: a symbolic link swapped in at any moment - for the window's folder, for
``serve.windows_dir`` itself, or for one of the files - redirects no write into its target, and
what the service serves or attaches is read from the file it opened, never through a link.

The races are made deterministic by wrapping the module's own steps (opening
``serve.windows_dir``, writing a file) so the link is swapped in exactly between the step that
opened the folder and the one that writes in it; nothing waits on a clock."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import pytest

import churnops
from churnops.errors import OutputWriteError
from churnops.serve import windows as windows_module
from churnops.serve.windows import METRICS_FILE, REPORT_FILE, TRIGGER_FILE, WindowContext

WINDOW = 1_000
THREE = sorted([METRICS_FILE, REPORT_FILE, TRIGGER_FILE])


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> WindowContext:
    """What the service compares its windows with: the reference of ``churnops data init``."""
    from churnops.config import load_config
    from churnops.monitor.settings import settings_from_config
    from churnops.pipeline.monitoring import MonitorRequest, inferred_configuration, reference_source
    from churnops.pipeline.reference import get_reference_profile
    from churnops.serve.records import RecordSchema

    project = tmp_path_factory.mktemp("project").resolve()
    (project / "data").mkdir()
    churnops.generate(20_000).write_csv(project / "data" / "churn.csv")
    config = load_config().model_copy(update={"root": project})
    source = reference_source(config, MonitorRequest())
    config = inferred_configuration(config, source.path)
    settings = settings_from_config(config)
    profile, info, _, _ = get_reference_profile(config, source, settings, use_cache=False)
    dtypes = RecordSchema.from_profile(profile).dtypes
    return WindowContext(profile, settings, info, project / "unused", list(config.thresholds.trigger_on), dtypes)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    """A window that drifts (it alerts: its report, trigger and metrics are written)."""
    return churnops.generate(WINDOW, start=20_000, scenario="seed").to_dicts()


@pytest.fixture()
def places(tmp_path: Path) -> tuple[Path, Path]:
    """``serve.windows_dir`` (resolved, as the service has it) and another project's folder,
    holding one file that must stay as it is."""
    root = tmp_path.resolve()
    other = root / "other-project"
    other.mkdir()
    (other / REPORT_FILE).write_text("another project's file")
    return root / "monitoring" / "windows", other


def _untouched(other: Path) -> None:
    assert sorted(p.name for p in other.iterdir()) == [REPORT_FILE]
    assert (other / REPORT_FILE).read_text() == "another project's file"


def _complete(folder: Path, document: dict) -> None:
    """``folder`` holds the window's three files and nothing else (no temporary file left)."""
    assert not folder.is_symlink() and folder.is_dir()
    assert sorted(p.name for p in folder.iterdir()) == THREE
    assert json.loads((folder / METRICS_FILE).read_text()) == document
    assert (folder / REPORT_FILE).read_text().startswith("<!DOCTYPE html>")


def _before_first_write(monkeypatch: pytest.MonkeyPatch, swap) -> list[str]:
    """Run ``swap`` once, just before the first file of the window is written (its folder
    already open); returns the names written, in order."""
    written: list[str] = []
    write = windows_module.write_file_at

    def swapping(folder: int, name: str, data: bytes, shown: Path) -> None:
        if not written:
            swap()
        written.append(name)
        write(folder, name, data, shown)

    monkeypatch.setattr(windows_module, "write_file_at", swapping)
    return written


def test_a_window_writes_its_report_trigger_and_metrics_into_a_real_folder(context, records, places):
    folder, _ = places
    outcome = dataclasses.replace(context, folder=folder).evaluate(records, 0)
    assert outcome.trigger and outcome.status == "alert"
    _complete(folder / "0", outcome.document)
    assert windows_module.read_window_file(folder, 0, METRICS_FILE) == (folder / "0" / METRICS_FILE).read_bytes()


def test_a_link_swapped_in_for_the_window_folder_once_it_is_open_redirects_no_write(
    context, records, places, monkeypatch
):
    folder, other = places

    def swap() -> None:  # the window's folder moved away, a link to another project's in its place
        (folder / "0").rename(folder / "moved")
        (folder / "0").symlink_to(other, target_is_directory=True)

    written = _before_first_write(monkeypatch, swap)
    outcome = dataclasses.replace(context, folder=folder).evaluate(records, 0)
    assert written == [REPORT_FILE, TRIGGER_FILE, METRICS_FILE]
    _untouched(other)
    _complete(folder / "moved", outcome.document)  # written into the real folder it opened
    assert windows_module.read_window_file(folder, 0, REPORT_FILE) is None  # and the link is not served


def test_a_link_swapped_in_for_the_windows_dir_once_it_is_open_redirects_no_write(
    context, records, places, monkeypatch
):
    folder, other = places

    def swap() -> None:
        folder.rename(folder.with_name("moved"))
        folder.symlink_to(other, target_is_directory=True)

    _before_first_write(monkeypatch, swap)
    outcome = dataclasses.replace(context, folder=folder).evaluate(records, 0)
    _untouched(other)
    _complete(folder.with_name("moved") / "0", outcome.document)


def test_a_link_planted_at_a_file_of_the_window_is_replaced_not_written_through(context, records, places, monkeypatch):
    folder, other = places

    def swap() -> None:
        for name in THREE:
            (folder / "0" / name).symlink_to(other / REPORT_FILE)

    _before_first_write(monkeypatch, swap)
    outcome = dataclasses.replace(context, folder=folder).evaluate(records, 0)
    _untouched(other)
    _complete(folder / "0", outcome.document)
    assert not any((folder / "0" / name).is_symlink() for name in THREE)


def test_a_link_swapped_in_for_the_window_folder_after_the_windows_dir_is_opened_is_removed(
    context, records, places, monkeypatch, caplog
):
    """Between opening ``serve.windows_dir`` and opening ``<window>`` in it: the link found is
    removed (its target untouched) with the warning, and a real folder is made in its place."""
    folder, other = places
    open_folder = windows_module.open_folder

    def opening(path: Path, create: bool = False) -> int:
        held = open_folder(path, create)
        (folder / "0").symlink_to(other, target_is_directory=True)
        return held

    monkeypatch.setattr(windows_module, "open_folder", opening)
    with caplog.at_level(logging.WARNING, logger="churnops.serve.windows"):
        outcome = dataclasses.replace(context, folder=folder).evaluate(records, 0)
    _untouched(other)
    _complete(folder / "0", outcome.document)
    assert f"{folder / '0'} was a symbolic link: removed (what it pointed to is untouched)" in caplog.text


def test_a_link_remade_each_time_it_is_removed_fails_the_window(context, records, places, monkeypatch):
    folder, other = places
    folder.mkdir(parents=True)
    unlink = os.unlink

    def remaking(name, *args, **kwargs) -> None:
        unlink(name, *args, **kwargs)
        os.symlink(other, name, dir_fd=kwargs["dir_fd"])

    (folder / "0").symlink_to(other, target_is_directory=True)
    monkeypatch.setattr(windows_module.os, "unlink", remaking)
    with pytest.raises(OutputWriteError, match="made there again each time it is removed"):
        dataclasses.replace(context, folder=folder).evaluate(records, 0)
    _untouched(other)


def test_a_link_on_the_windows_dir_path_refuses_the_window(context, records, places):
    folder, other = places
    folder.parent.mkdir()
    folder.symlink_to(other, target_is_directory=True)  # serve.windows_dir swapped for a link
    with pytest.raises(OutputWriteError, match="serve.windows_dir now leads through a symbolic link"):
        dataclasses.replace(context, folder=folder).evaluate(records, 0)
    folder.unlink()
    (folder.parent / "elsewhere").mkdir()
    folder.parent.rename(folder.parent.with_name("real"))
    folder.parent.symlink_to(folder.parent.with_name("real") / "elsewhere")  # a link above it
    with pytest.raises(OutputWriteError, match="serve.windows_dir now leads through a symbolic link"):
        dataclasses.replace(context, folder=folder).evaluate(records, 0)
    _untouched(other)
    assert list((folder.parent.with_name("real") / "elsewhere").iterdir()) == []


def test_a_window_file_is_read_only_from_a_regular_file_reached_through_no_link(places):
    folder, other = places
    (folder / "0").mkdir(parents=True)
    (folder / "0" / METRICS_FILE).write_text("{}")
    read = windows_module.read_window_file
    assert read(folder, 0, METRICS_FILE) == b"{}"
    assert read(folder, 1, METRICS_FILE) is None  # no such window
    (folder / "0" / REPORT_FILE).symlink_to(other / REPORT_FILE)
    assert read(folder, 0, REPORT_FILE) is None  # a link at the file
    os.mkfifo(folder / "0" / TRIGGER_FILE)
    assert read(folder, 0, TRIGGER_FILE) is None  # a pipe: refused, without waiting for a writer
    os.link(other / REPORT_FILE, folder / "0" / "hard.html")
    assert read(folder, 0, "hard.html") is None  # another file's second name
    (folder / "1").symlink_to(other, target_is_directory=True)
    assert read(folder, 1, REPORT_FILE) is None  # a link at the window's folder
    folder.rename(folder.with_name("moved"))
    folder.symlink_to(folder.with_name("moved"), target_is_directory=True)
    assert read(folder, 0, METRICS_FILE) is None  # a link at serve.windows_dir


def test_a_notification_attaches_private_copies_of_the_window_files(places):
    folder, other = places
    (folder / "0").mkdir(parents=True)
    (folder / "0" / METRICS_FILE).write_text("{}")
    (folder / "0" / REPORT_FILE).symlink_to(other / REPORT_FILE)
    with windows_module.attachable(folder, 0, (REPORT_FILE, METRICS_FILE)) as files:
        assert [p.name for p in files] == [METRICS_FILE]  # the link is not attached
        assert files[0].read_text() == "{}" and not files[0].is_relative_to(folder)
        private = files[0].parent
    assert not private.exists()
