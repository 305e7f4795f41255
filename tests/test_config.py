import pytest

from reascribe.config import Config
from reascribe.errors import RequestError


def test_file_then_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    config_file = tmp_path / "c.toml"
    config_file.write_text('spool_dir = "~/sp"\ndrop_dirs = ["~/in"]\nosc_port = 9500\n')
    config = Config.load(config_file, osc_port=9600, drop_dirs=[])
    assert config.spool_dir == (tmp_path / "sp").resolve()
    assert config.drop_dirs == [(tmp_path / "in").resolve()]
    assert config.osc_port == 9600  # the flag wins; an empty flag list does not erase the file's


@pytest.mark.parametrize(
    "text, words",
    [
        ("osc_port = 70000", "osc_port"),
        ("osc_port = true", "osc_port"),
        ("max_attempts = 0", "max_attempts"),
        ("reaper_osc = 8000", "reaper_osc"),
        ('drop_dirs = "~/in"', "list of folders"),
        ("colour = 'red'", "Unknown setting"),
        ("spool_dir = [", "cannot be read"),
    ],
)
def test_bad_settings_are_named(tmp_path, text, words):
    config_file = tmp_path / "c.toml"
    config_file.write_text(text + "\n")
    with pytest.raises(RequestError, match=words):
        Config.load(config_file)


def test_a_named_config_file_must_exist(tmp_path):
    with pytest.raises(RequestError, match="does not exist"):
        Config.load(tmp_path / "missing.toml")
