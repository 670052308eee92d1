"""The study file is read from one table of settings, strictly: a misspelt name is an error that
names the line and the nearest valid name, never a setting silently ignored."""

import dataclasses

import pytest
from carbonscape import StudyError, check_study, load_study
from carbonscape.cli.main import cli
from carbonscape.study import settings
from carbonscape.study.settings import SETTINGS, Setting, parse, reference, render, template
from click.testing import CliRunner
from test_check import make_study


def _edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def _line_of(path, needle):
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("[outputs]", "[output]", "unknown section [output]; did you mean [outputs]?"),
        ("maps = false", "maps = false\npixel_map = true", "unknown key `pixel_map` in [outputs]; did you mean `pixel_maps`?"),
        ('scheme = "classes"', 'scheme = "classes"\nweight = "area"', "unknown key `weight` in [zoning]; did you mean `weights`?"),
        ('id_field = "county"', 'id_feild = "county"', "unknown key `id_feild` in [counties]; did you mean `id_field`?"),
    ],
    ids=["section-output", "key-pixel_map", "key-weight", "key-id_feild"],
)
def test_an_unknown_name_is_an_error_with_its_line_and_the_nearest_valid_name(tmp_path, old, new, expected):
    path = _edit(make_study(tmp_path), old, new)
    wrong = new.splitlines()[-1].strip()
    line = _line_of(path, wrong)
    problems = check_study(path)
    assert problems == [f"study.toml, line {line}: {expected}" + problems[0].split(expected)[1]], problems
    with pytest.raises(StudyError, match="did you mean"):
        load_study(path)
    # The CLI: check and run exit 2 with the file, the line and the fix, and nothing is computed.
    runner = CliRunner()
    for command in (["check", str(path)], ["run", str(path), "--scheduler", "synchronous"]):
        result = runner.invoke(cli, command)
        assert result.exit_code == 2, result.output
        assert str(path) in result.output and f"line {line}" in result.output and expected in result.output
    assert not (tmp_path / "results").exists()


def test_unknown_key_lists_what_the_section_takes(tmp_path):
    path = _edit(make_study(tmp_path), "maps = false", "maps = false\ncolour = true")
    (problem,) = check_study(path)
    assert "unknown key `colour` in [outputs]" in problem and "did you mean" not in problem
    assert "[outputs] takes: dir, maps, pixel_maps, report" in problem


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("\nk = 2", "\nk = 2.5", "[zoning] `k` must be an integer >= 2, not 2.5"),
        ("\nk = 2", "\nk = 1", "[zoning] `k` must be an integer >= 2, not 1"),
        ("chunk = 256", "chunk = 10", "[landuse] `chunk` must be an integer >= 256, not 10"),
        ("per_capita_t = 4.0", "per_capita_t = -4.0", "[demand] `per_capita_t` must be a positive number, not -4.0"),
        ("maps = false", 'maps = "no"', "[outputs] `maps` must be true or false, not 'no'"),
        ('method = "jenks"', 'method = "jenk"', "[zoning] method 'jenk' is not one of \"jenks\", \"quantile\", \"equal\", \"manual\"; did you mean \"jenks\"?"),
        ('[zoning]', '[ratio]\nunits = "co2"\n[zoning]', "[ratio] units 'co2' is not one of \"co2_per_c\", \"carbon\""),
    ],
    ids=["k-float", "k-small", "chunk", "negative", "bool", "method", "units"],
)
def test_a_bad_value_names_the_key_and_what_it_must_be(tmp_path, old, new, expected):
    problems = check_study(_edit(make_study(tmp_path), old, new))
    assert len(problems) == 1 and expected in problems[0], problems
    assert "np.float64" not in problems[0] and "np.int64" not in problems[0]


def test_a_wrong_id_field_names_the_study_key_not_a_command_line_flag(tmp_path):
    path = _edit(make_study(tmp_path), 'id_field = "county"', 'id_field = "name"')
    problems = check_study(path)
    joined = "\n".join(problems)
    assert "no field 'name'; the fields are ['county']: set [counties] id_field to one of them" in joined
    assert "--id-field" not in joined
    result = CliRunner().invoke(cli, ["run", str(path)])
    assert result.exit_code == 2 and "set [counties] id_field" in result.output and "--id-field" not in result.output


def test_old_names_of_ratio_units_and_zone_scheme_are_still_read(tmp_path):
    path = _edit(make_study(tmp_path, zoning='method = "manual"\nk = 7\nbreaks = [0, 1, 2, 3, 4, 5, 6, 7]\nscheme = "paper"'),
                 "[zoning]", '[ratio]\nunits = "paper"\n[zoning]')
    study = load_study(path)
    assert study.ratio_units == "co2_per_c" and study.zoning.scheme == "four_zones"


def test_the_template_is_the_settings_table_and_reads_back_without_a_settings_problem(tmp_path):
    import tomllib

    text = template()
    raw = tomllib.loads(text)
    values, problems = parse(raw, text=text, folder=tmp_path)
    assert problems == []
    for setting in SETTINGS:
        line = f"{'# ' if setting.template == 'comment' else ''}{setting.key} = "
        assert (line in text) == (setting.template != "hide"), setting.name
    # Every setting is in the reference, with its default.
    ref = reference()
    for setting in SETTINGS:
        assert f"| `{setting.key}` |" in ref and f"## [{setting.section}]" in ref


def test_adding_a_setting_is_one_row(tmp_path, monkeypatch):
    """A new row is parsed, checked, defaulted, templated and documented with no other edit."""
    row = Setting("experiment", "draws", "int", 1000, "Monte Carlo draws", minimum=10)
    monkeypatch.setattr(settings, "SETTINGS", (*SETTINGS, row))
    path = make_study(tmp_path)
    assert load_study(path).setting("experiment", "draws") == 1000
    _edit(path, "[zoning]", "[experiment]\ndraws = 500\n[zoning]")
    assert load_study(path).setting("experiment", "draws") == 500
    _edit(path, "draws = 500", "draws = 5")
    (problem,) = check_study(path)
    assert problem.endswith(f"line {_line_of(path, 'draws = 5')}: [experiment] `draws` must be an integer >= 10, not 5"), problem
    _edit(path, "draws = 5", "draw = 500")
    assert "did you mean `draws`?" in check_study(path)[0]
    assert "[experiment]\ndraws = 1000" in template() and "| `draws` |" in reference()


def test_a_sub_table_section_is_a_row_with_a_dotted_section(tmp_path, monkeypatch):
    # [landuse.maps] is a real setting (several maps); the mechanism is shown on a made-up sub-table.
    row = Setting("landuse.extras", "2030", "path", None, "another land-use raster")
    monkeypatch.setattr(settings, "SETTINGS", (*SETTINGS, row))
    path = _edit(make_study(tmp_path), "chunk = 256", 'chunk = 256\n[landuse.extras]\n"2030" = "landuse.tif"\n"2040" = "x.tif"')
    problems = check_study(path)
    assert len(problems) == 1 and "unknown key `2040` in [landuse.extras]; did you mean `2030`?" in problems[0], problems
    assert load_study(_edit(path, '"2040" = "x.tif"\n', "")).setting("landuse.extras", "2030") == tmp_path / "landuse.tif"


def test_a_setting_written_by_a_program_must_be_in_the_table():
    assert render({"zoning": {"k": 3}}) == "[zoning]\nk = 3\n"
    with pytest.raises(ValueError, match="pixel_map"):
        render({"outputs": {"pixel_map": True}})


def test_settings_command_prints_the_reference():
    result = CliRunner().invoke(cli, ["settings"])
    assert result.exit_code == 0 and "## [zoning]" in result.output and "`four_zones`" in result.output


def test_every_row_is_well_formed():
    for setting in SETTINGS:
        assert setting.kind in settings.KINDS, setting.name
        assert setting.help, setting.name
        assert setting.template in ("set", "comment", "hide"), setting.name
        if setting.kind in ("choice", "choice_or_table"):
            assert setting.choices, setting.name
            assert setting.required or isinstance(setting.default, dict) or setting.default in setting.choices, setting.name
    keys = [(s.section, s.key) for s in SETTINGS]
    assert len(keys) == len(set(keys))
    assert dataclasses.is_dataclass(Setting)
