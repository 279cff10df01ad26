"""Settings: environment over config.yml over defaults, every problem reported at once."""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from malbeacon_connector.opencti.lifecycle import helper_config
from malbeacon_connector.settings import CommandLineSettings, Settings, SettingsError, load_settings, read_config_file

API_KEY = "mb-5ecret-K3y-0f-the-tests"
TOKEN = "0pencti-t0ken-0f-the-tests"
CONNECTOR_ID = "5e8a6b1c-3f2d-4c1e-9a7b-2d4f6e8a0c1b"
VALID_ENV = {
    "OPENCTI_URL": "http://opencti:8080",
    "OPENCTI_TOKEN": TOKEN,
    "CONNECTOR_ID": CONNECTOR_ID,
    "MALBEACON_API_KEY": API_KEY,
}
_PREFIXES = ("OPENCTI", "CONNECTOR", "MALBEACON")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """No OPENCTI_*/CONNECTOR_*/MALBEACON_* variable from outside, and no stray config.yml."""
    for name in list(os.environ):
        upper = name.upper()
        if any(upper == prefix or upper.startswith(prefix + "_") for prefix in _PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def config_file(tmp_path) -> Path:
    """Where the tests write their config.yml (absent until written)."""
    return tmp_path / "config.yml"


def set_env(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def problems_of(model: type, config_file: Path) -> list[str]:
    """The problems load_settings reports; fails when it loads."""
    with pytest.raises(SettingsError) as raised:
        load_settings(model, config_file=config_file)
    return raised.value.problems


@pytest.mark.parametrize(
    "content",
    [
        {"opencti": {"url": "http://opencti:8080", "token": TOKEN}, "connector": {"id": CONNECTOR_ID}},
        {
            "opencti": {"url": "https://opencti.example.org", "token": TOKEN},
            "connector": {"id": CONNECTOR_ID, "scope": "ipv4-addr,Url", "auto": "true", "log_level": "warning"},
            "malbeacon": {"max_tlp": "amber+strict", "ip_lookups": "c2,actorip", "indicator_valid_from": "last_seen"},
        },
    ],
    ids=["required-only", "every-section"],
)
def test_a_valid_configuration_loads(monkeypatch, content):
    """The settings model itself, given a valid configuration (the key from the environment)."""
    set_env(monkeypatch, MALBEACON_API_KEY=API_KEY)
    settings = Settings(**content)
    assert settings.connector.id == CONNECTOR_ID and settings.opencti.token.get_secret_value() == TOKEN
    assert settings.malbeacon.api_key.get_secret_value() == API_KEY
    if "malbeacon" in content:
        assert settings.connector.scope == ("IPv4-Addr", "Url") and settings.connector.auto is True
        assert (settings.connector.log_level, settings.malbeacon.max_tlp) == ("warn", "TLP:AMBER+STRICT")
        assert settings.malbeacon.ip_lookups == ("c2", "actorip")


def test_defaults_fill_every_optional_setting(monkeypatch, config_file):
    """With only the required settings given, every other one has its documented default."""
    set_env(monkeypatch, **VALID_ENV)
    settings = load_settings(Settings, config_file=config_file)
    assert settings.opencti.url == "http://opencti:8080"
    assert settings.opencti.token.get_secret_value() == TOKEN
    assert settings.connector.id == CONNECTOR_ID
    assert settings.connector.name == "Malbeacon"
    assert settings.connector.scope == ("IPv4-Addr", "IPv6-Addr", "Domain-Name")
    assert settings.connector.auto is False
    assert settings.connector.log_level == "error"
    assert settings.malbeacon.api_key.get_secret_value() == API_KEY
    assert settings.malbeacon.api_base_url == "https://api.malbeacon.com/v1/"
    assert settings.malbeacon.indicator_score_level == 50
    assert settings.malbeacon.max_tlp == "TLP:AMBER"
    assert settings.malbeacon.request_timeout == 10
    assert settings.malbeacon.max_retries == 2


def test_config_file_nested_keys_are_read(config_file):
    """Every section of config.yml is read by its nested keys."""
    config_file.write_text(
        f"""
opencti:
  url: https://cti.example.org
  token: {TOKEN}
connector:
  id: {CONNECTOR_ID.upper()}
  name: Beacons
  scope: IPv4-Addr
  auto: true
  log_level: info
malbeacon:
  api_key: {API_KEY}
  api_base_url: http://malbeacon.internal/v1
  indicator_score_level: 80
  max_tlp: red
  request_timeout: 2.5
  max_retries: 0
""",
        encoding="utf-8",
    )
    settings = load_settings(Settings, config_file=config_file)
    assert settings.opencti.url == "https://cti.example.org"
    assert settings.opencti.token.get_secret_value() == TOKEN
    assert settings.connector.id == CONNECTOR_ID
    assert settings.connector.name == "Beacons"
    assert settings.connector.scope == ("IPv4-Addr",)
    assert settings.connector.auto is True
    assert settings.connector.log_level == "info"
    assert settings.malbeacon.api_key.get_secret_value() == API_KEY
    assert settings.malbeacon.api_base_url == "http://malbeacon.internal/v1"
    assert settings.malbeacon.indicator_score_level == 80
    assert settings.malbeacon.max_tlp == "TLP:RED"
    assert settings.malbeacon.request_timeout == 2.5
    assert settings.malbeacon.max_retries == 0


def test_environment_wins_over_config_file_and_keeps_its_other_values(monkeypatch, config_file):
    """An environment variable overrides its config.yml key; the other keys of the section stay."""
    config_file.write_text(
        f"malbeacon:\n  api_key: {API_KEY}\n  indicator_score_level: 20\n  max_tlp: green\n"
        "connector:\n  log_level: debug\n  auto: true\n",
        encoding="utf-8",
    )
    set_env(
        monkeypatch,
        MALBEACON_INDICATOR_SCORE_LEVEL="70",
        CONNECTOR_AUTO="false",
        OPENCTI_URL="http://opencti:8080",
        OPENCTI_TOKEN=TOKEN,
        CONNECTOR_ID=CONNECTOR_ID,
    )
    settings = load_settings(Settings, config_file=config_file)
    assert settings.malbeacon.indicator_score_level == 70
    assert settings.connector.auto is False
    assert settings.malbeacon.api_key.get_secret_value() == API_KEY
    assert settings.malbeacon.max_tlp == "TLP:GREEN"
    assert settings.connector.log_level == "debug"


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("IPv4-Addr,IPv6-Addr,Domain-Name", ("IPv4-Addr", "IPv6-Addr", "Domain-Name")),
        (" domain-name , IPV4-ADDR ", ("Domain-Name", "IPv4-Addr")),
        ("ipv6-addr,,ipv6-addr,", ("IPv6-Addr",)),
        ("IPv4-Addr,indicator", ("IPv4-Addr", "Indicator")),  # opt-in: an indicator's values of the types in scope
    ],
)
def test_scope_from_environment_is_case_insensitive_and_normalised(monkeypatch, config_file, scope, expected):
    """A comma-separated scope is read case-insensitively, canonicalised and de-duplicated."""
    set_env(monkeypatch, **VALID_ENV, CONNECTOR_SCOPE=scope)
    assert load_settings(Settings, config_file=config_file).connector.scope == expected


@pytest.mark.parametrize(
    ("yaml_scope", "expected"),
    [
        ("[ipv4-addr, DOMAIN-NAME, IPv4-Addr]", ("IPv4-Addr", "Domain-Name")),
        ("\n    - ipv6-addr\n    - Domain-Name", ("IPv6-Addr", "Domain-Name")),
        ("'Domain-name, ipv6-Addr'", ("Domain-Name", "IPv6-Addr")),
    ],
)
def test_scope_from_config_file_as_list_or_string(monkeypatch, config_file, yaml_scope, expected):
    """config.yml may give the scope as a YAML list or a comma-separated string."""
    config_file.write_text(f"connector:\n  scope: {yaml_scope}\n", encoding="utf-8")
    set_env(monkeypatch, **VALID_ENV)
    assert load_settings(Settings, config_file=config_file).connector.scope == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("amber+strict", "TLP:AMBER+STRICT"), ("TLP:WHITE", "TLP:CLEAR"), (" tlp:red ", "TLP:RED")],
)
def test_max_tlp_is_normalised(monkeypatch, config_file, text, expected):
    """MALBEACON_MAX_TLP accepts any spelling normalise_tlp does and keeps the canonical name."""
    set_env(monkeypatch, MALBEACON_API_KEY=API_KEY, MALBEACON_MAX_TLP=text)
    assert load_settings(CommandLineSettings, config_file=config_file).malbeacon.max_tlp == expected


@pytest.mark.parametrize(("text", "expected"), [("WARNING", "warn"), ("Info", "info"), (" DEBUG ", "debug")])
def test_log_level_is_normalised(monkeypatch, config_file, text, expected):
    """Log levels are case-insensitive and `warning` means `warn`."""
    set_env(monkeypatch, **VALID_ENV, CONNECTOR_LOG_LEVEL=text)
    assert load_settings(Settings, config_file=config_file).connector.log_level == expected


INVALID_SETTINGS = [
    pytest.param("MALBEACON_API_KEY", None, "required", id="missing-key"),
    pytest.param("MALBEACON_API_KEY", "", "required", id="empty-key"),
    pytest.param("MALBEACON_API_KEY", "ChangeMe", "placeholder", id="placeholder-key"),
    pytest.param("MALBEACON_INDICATOR_SCORE_LEVEL", "101", "integer from 0 to 100", id="score-101"),
    pytest.param("MALBEACON_INDICATOR_SCORE_LEVEL", "-1", "integer from 0 to 100", id="score-negative"),
    pytest.param("MALBEACON_INDICATOR_SCORE_LEVEL", "abc", "integer from 0 to 100", id="score-abc"),
    pytest.param("MALBEACON_MAX_TLP", "purple", "TLP:CLEAR, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT, TLP:RED", id="tlp"),
    pytest.param(
        "CONNECTOR_SCOPE",
        "Email-Addr",
        "allowed: IPv4-Addr, IPv6-Addr, Domain-Name, Url, User-Agent, Indicator",
        id="scope-email",
    ),
    pytest.param("CONNECTOR_SCOPE", " , ", "allowed: IPv4-Addr, IPv6-Addr, Domain-Name", id="scope-no-entry"),
    pytest.param("MALBEACON_IP_LOOKUPS", "c2,actorhostname", "allowed: c2, c2ip, actorip", id="ip-lookups"),
    pytest.param("MALBEACON_DOMAIN_LOOKUPS", "actorip", "allowed: c2, actorhostname", id="domain-lookups"),
    pytest.param("MALBEACON_CREATE_INFRASTRUCTURE", "perhaps", "not a boolean", id="infrastructure-switch"),
    pytest.param("MALBEACON_API_BASE_URL", "ftp://x", "http(s) URL", id="base-url-ftp"),
    pytest.param("MALBEACON_API_BASE_URL", "not a url", "http(s) URL", id="base-url-garbage"),
    pytest.param("MALBEACON_API_BASE_URL", "https://api.example.com/v1?x=1", "query", id="base-url-query"),
    pytest.param("MALBEACON_API_BASE_URL", "https://api.example.com/v1#top", "fragment", id="base-url-fragment"),
    pytest.param(
        "MALBEACON_API_BASE_URL", "https://user:s3cr3t@api.example.com/v1", "credentials", id="base-url-creds"
    ),
    pytest.param("MALBEACON_API_BASE_URL", "https://api.example.com:99999/v1", "http(s) URL", id="base-url-port"),
    pytest.param("OPENCTI_URL", "opencti:8080", "http(s) URL", id="opencti-url-no-scheme"),
    pytest.param("OPENCTI_TOKEN", "changeme", "placeholder", id="placeholder-token"),
    pytest.param("CONNECTOR_ID", "ChangeMe", "not a UUID", id="connector-id"),
    pytest.param("CONNECTOR_AUTO", "maybe", "allowed: true, false", id="auto"),
    pytest.param("CONNECTOR_LOG_LEVEL", "verbose", "allowed: debug, info, warn, error", id="log-level"),
    pytest.param("MALBEACON_REQUEST_TIMEOUT", "0", "from 1 to 120", id="timeout-0"),
    pytest.param("MALBEACON_REQUEST_TIMEOUT", "500", "from 1 to 120", id="timeout-500"),
    pytest.param("MALBEACON_REQUEST_TIMEOUT", "soon", "from 1 to 120", id="timeout-text"),
    pytest.param("MALBEACON_MAX_RETRIES", "11", "integer from 0 to 10", id="retries-11"),
    pytest.param("MALBEACON_INDICATOR_VALID_FROM", "first_seen", "allowed: enrichment, last_seen", id="valid-from"),
    pytest.param("MALBEACON_CREATE_INDICATORS", "yes please", "allowed: true, false", id="create-indicators"),
    pytest.param("MALBEACON_SKIP_OWN_AUTO_ENRICHMENTS", "2", "allowed: true, false", id="skip-own-auto"),
]


@pytest.mark.parametrize(("name", "value", "allowed"), INVALID_SETTINGS)
def test_an_invalid_setting_is_reported_by_env_name_with_what_is_allowed(
    monkeypatch, config_file, name, value, allowed
):
    """One bad value gives exactly one problem, naming the variable and what it accepts."""
    set_env(monkeypatch, **VALID_ENV)
    if value is None:
        monkeypatch.delenv(name)
    else:
        monkeypatch.setenv(name, value)
    problems = problems_of(Settings, config_file)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{name} ("), problems
    assert allowed in problems[0]


def test_every_invalid_setting_is_reported_at_once(monkeypatch, config_file):
    """All bad values end up in one SettingsError, one problem each."""
    bad = {
        "MALBEACON_API_KEY": "ChangeMe",
        "MALBEACON_INDICATOR_SCORE_LEVEL": "abc",
        "MALBEACON_MAX_TLP": "purple",
        "CONNECTOR_SCOPE": "Url,Email-Addr",
        "MALBEACON_IP_LOOKUPS": "dns",
        "MALBEACON_API_BASE_URL": "ftp://x",
        "CONNECTOR_ID": "ChangeMe",
        "CONNECTOR_AUTO": "maybe",
        "MALBEACON_REQUEST_TIMEOUT": "500",
        "MALBEACON_MAX_RETRIES": "11",
        "CONNECTOR_LOG_LEVEL": "verbose",
    }
    set_env(monkeypatch, **{**VALID_ENV, **bad})
    with pytest.raises(SettingsError) as raised:
        load_settings(Settings, config_file=config_file)
    problems = raised.value.problems
    assert sorted(problem.split(" ", 1)[0] for problem in problems) == sorted(bad)
    for problem in problems:
        assert problem in str(raised.value)


def test_secrets_never_appear_in_the_error(monkeypatch, config_file):
    """Neither the API key nor the OpenCTI token is echoed back, whatever else is wrong."""
    config_file.write_text(f"malbeacon:\n  api_key: {API_KEY}\n  max_tlp: purple\n", encoding="utf-8")
    set_env(
        monkeypatch,
        OPENCTI_URL="nope",
        OPENCTI_TOKEN=TOKEN,
        CONNECTOR_ID="x",
        MALBEACON_INDICATOR_SCORE_LEVEL="101",
        MALBEACON_API_BASE_URL="not a url",
    )
    with pytest.raises(SettingsError) as raised:
        load_settings(Settings, config_file=config_file)
    text = f"{raised.value}\n{raised.value!r}\n{raised.value.problems}"
    assert len(raised.value.problems) == 5
    assert API_KEY not in text
    assert TOKEN not in text


def test_enrich_settings_need_only_the_malbeacon_key(monkeypatch, config_file):
    """The standalone enrichment loads without any OPENCTI_* or CONNECTOR_* setting."""
    set_env(monkeypatch, MALBEACON_API_KEY=API_KEY)
    settings = load_settings(CommandLineSettings, config_file=config_file)
    assert settings.malbeacon.api_key.get_secret_value() == API_KEY
    assert settings.malbeacon.indicator_score_level == 50


def test_enrich_settings_report_only_the_missing_key(config_file):
    """Without a key, CommandLineSettings reports MALBEACON_API_KEY and nothing else."""
    problems = problems_of(CommandLineSettings, config_file)
    assert len(problems) == 1
    assert problems[0].startswith("MALBEACON_API_KEY (malbeacon.api_key): required")


def test_connector_settings_report_the_missing_platform_settings(monkeypatch, config_file):
    """Settings needs OPENCTI_URL, OPENCTI_TOKEN and CONNECTOR_ID, each reported as required."""
    set_env(monkeypatch, MALBEACON_API_KEY=API_KEY)
    problems = problems_of(Settings, config_file)
    assert sorted(problem.split(" ", 1)[0] for problem in problems) == ["CONNECTOR_ID", "OPENCTI_TOKEN", "OPENCTI_URL"]
    assert all("required, none given" in problem for problem in problems)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"- opencti\n- malbeacon\n", id="a-list"),
        pytest.param(b"just text\n", id="a-string"),
        pytest.param(b"malbeacon: [unclosed\n", id="not-yaml"),
        pytest.param(b"malbeacon:\n\tapi_key: x\n", id="tab-indented"),
        pytest.param(b"\xff\xfe\x00not utf-8", id="not-utf-8"),
    ],
)
def test_unusable_config_file_is_reported_by_name(monkeypatch, config_file, content):
    """A config.yml that is not a YAML mapping gives one SettingsError naming the file."""
    config_file.write_bytes(content)
    set_env(monkeypatch, **VALID_ENV)
    problems = problems_of(Settings, config_file)
    assert len(problems) == 1
    assert str(config_file) in problems[0]


@pytest.mark.parametrize("content", ["", "# only a comment\n"])
def test_empty_config_file_is_fine(monkeypatch, config_file, content):
    """An empty config.yml means no settings from the file."""
    config_file.write_text(content, encoding="utf-8")
    set_env(monkeypatch, MALBEACON_API_KEY=API_KEY)
    assert load_settings(CommandLineSettings, config_file=config_file).malbeacon.max_retries == 2


def test_absent_config_file_is_fine(monkeypatch, tmp_path):
    """No config.yml, at the given path or in the working directory, is not an error."""
    set_env(monkeypatch, MALBEACON_API_KEY=API_KEY)
    assert not (tmp_path / "config.yml").exists()
    assert load_settings(CommandLineSettings).malbeacon.max_tlp == "TLP:AMBER"
    assert (
        load_settings(CommandLineSettings, config_file=tmp_path / "nowhere" / "config.yml").malbeacon.max_retries == 2
    )


def test_default_config_file_is_read_from_the_working_directory(monkeypatch, tmp_path):
    """Without a path, config.yml in the working directory is read."""
    (tmp_path / "config.yml").write_text(f"malbeacon:\n  api_key: {API_KEY}\n  max_retries: 7\n", encoding="utf-8")
    assert load_settings(CommandLineSettings).malbeacon.max_retries == 7


@given(st.integers())
def test_score_level_is_accepted_exactly_from_0_to_100(score):
    """Any integer is a valid MALBEACON_INDICATOR_SCORE_LEVEL iff 0 <= n <= 100."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        set_env(monkeypatch, MALBEACON_API_KEY=API_KEY, MALBEACON_INDICATOR_SCORE_LEVEL=str(score))
        if 0 <= score <= 100:
            assert (
                load_settings(CommandLineSettings, config_file=Path("absent.yml")).malbeacon.indicator_score_level
                == score
            )
        else:
            with pytest.raises(SettingsError) as raised:
                load_settings(CommandLineSettings, config_file=Path("absent.yml"))
            assert len(raised.value.problems) == 1
            assert raised.value.problems[0].startswith("MALBEACON_INDICATOR_SCORE_LEVEL (")


def test_lookups_and_context_switches_have_documented_defaults_and_read_lists(monkeypatch, config_file):
    set_env(monkeypatch, MALBEACON_API_KEY=API_KEY)
    defaults = load_settings(CommandLineSettings, config_file=config_file).malbeacon
    assert (defaults.ip_lookups, defaults.domain_lookups) == (("c2",), ("c2",))
    assert (defaults.create_infrastructure, defaults.add_autonomous_systems, defaults.add_countries) == (True,) * 3
    assert (defaults.add_labels, defaults.add_seen_times, defaults.add_user_agents) == (True, True, False)
    set_env(
        monkeypatch,
        MALBEACON_IP_LOOKUPS=" C2 , actorIP,c2ip ",
        MALBEACON_DOMAIN_LOOKUPS="actorhostname",
        MALBEACON_ADD_USER_AGENTS="true",
        CONNECTOR_SCOPE="url,user-agent",
    )
    chosen = load_settings(CommandLineSettings, config_file=config_file).malbeacon
    assert chosen.ip_lookups == ("c2", "actorip", "c2ip")
    assert chosen.domain_lookups == ("actorhostname",)
    assert chosen.add_user_agents is True


def test_indicator_and_auto_enrichment_settings_have_documented_defaults(monkeypatch, config_file):
    set_env(monkeypatch, MALBEACON_API_KEY=API_KEY)
    defaults = load_settings(CommandLineSettings, config_file=config_file).malbeacon
    assert (defaults.create_indicators, defaults.indicator_valid_from) == (True, "enrichment")
    assert defaults.skip_own_auto_enrichments is True
    set_env(
        monkeypatch,
        MALBEACON_CREATE_INDICATORS="false",
        MALBEACON_INDICATOR_VALID_FROM=" Last-Seen ",
        MALBEACON_SKIP_OWN_AUTO_ENRICHMENTS="false",
    )
    chosen = load_settings(CommandLineSettings, config_file=config_file).malbeacon
    assert (chosen.create_indicators, chosen.indicator_valid_from) == (False, "last_seen")
    assert chosen.skip_own_auto_enrichments is False


def test_credentials_in_the_base_url_are_not_echoed(monkeypatch, config_file):
    set_env(monkeypatch, MALBEACON_API_KEY=API_KEY, MALBEACON_API_BASE_URL="https://user:s3cr3t@api.example.com/v1")
    with pytest.raises(SettingsError) as raised:
        load_settings(CommandLineSettings, config_file=config_file)
    assert "s3cr3t" not in str(raised.value)


@pytest.mark.parametrize("key", ["ключ-api", "key with space", "key\twith\ttab"])
def test_an_api_key_that_cannot_travel_in_a_header_is_refused_at_start_up(monkeypatch, config_file, key):
    set_env(monkeypatch, MALBEACON_API_KEY=key)
    with pytest.raises(SettingsError) as raised:
        load_settings(CommandLineSettings, config_file=config_file)
    assert "MALBEACON_API_KEY" in str(raised.value) and "printable ASCII" in str(raised.value)
    assert key not in str(raised.value)


def test_the_api_key_can_come_from_a_file_such_as_a_docker_secret(monkeypatch, config_file, tmp_path):
    secret = tmp_path / "malbeacon_api_key"
    secret.write_text(f"  {API_KEY}\n", encoding="utf-8")
    set_env(monkeypatch, MALBEACON_API_KEY_FILE=str(secret))
    assert load_settings(CommandLineSettings, config_file=config_file).malbeacon.api_key.get_secret_value() == API_KEY
    set_env(monkeypatch, MALBEACON_API_KEY="from-the-environment")  # the variable wins over the file
    assert load_settings(CommandLineSettings, config_file=config_file).malbeacon.api_key.get_secret_value() == (
        "from-the-environment"
    )


@pytest.mark.parametrize("content", [None, "", "ChangeMe"])
def test_an_unreadable_or_empty_key_file_is_reported(monkeypatch, config_file, tmp_path, content):
    secret = tmp_path / "key"
    if content is not None:
        secret.write_text(content, encoding="utf-8")
    set_env(monkeypatch, MALBEACON_API_KEY_FILE=str(secret))
    with pytest.raises(SettingsError) as raised:
        load_settings(CommandLineSettings, config_file=config_file)
    (problem,) = raised.value.problems
    assert problem.startswith("MALBEACON_API_KEY (malbeacon.api_key): ")
    assert ("cannot be read" in problem) if content is None else True


SETTING_NAMES = sorted(
    f"{section}_{name}".upper()
    for section, field in Settings.model_fields.items()
    for name in field.annotation.model_fields
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(SETTING_NAMES),
    text=st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=60),
)
def test_any_value_of_any_setting_is_accepted_or_reported_never_a_crash(monkeypatch, config_file, name, text):
    set_env(monkeypatch, **{**VALID_ENV, name: text})
    try:
        load_settings(Settings, config_file=config_file)
    except SettingsError as error:
        assert all(problem.split(" (")[0].isupper() for problem in error.problems)
        assert API_KEY not in str(error) and TOKEN not in str(error)


def test_an_empty_variable_counts_as_unset_and_keeps_the_config_file_value(monkeypatch, config_file):
    """`MALBEACON_API_KEY=` (as docker-compose writes an unfilled variable) does not wipe config.yml's key."""
    config_file.write_text(
        f"malbeacon:\n  api_key: {API_KEY}\n  max_tlp: green\nconnector:\n  scope: Url\n", encoding="utf-8"
    )
    empty = dict.fromkeys(("MALBEACON_API_KEY", "MALBEACON_MAX_TLP", "CONNECTOR_SCOPE", "MALBEACON_MAX_RETRIES"), "")
    set_env(monkeypatch, **{**VALID_ENV, **empty, "CONNECTOR_NAME": ""})
    settings = load_settings(Settings, config_file=config_file)
    assert settings.malbeacon.api_key.get_secret_value() == API_KEY
    assert settings.malbeacon.max_tlp == "TLP:GREEN"
    assert settings.connector.scope == ("Url",)
    assert (settings.malbeacon.max_retries, settings.connector.name) == (2, "Malbeacon")  # the defaults


def test_an_empty_key_variable_lets_the_key_file_give_the_key(monkeypatch, config_file, tmp_path):
    secret = tmp_path / "malbeacon_api_key"
    secret.write_text(API_KEY, encoding="utf-8")
    set_env(monkeypatch, MALBEACON_API_KEY="", MALBEACON_API_KEY_FILE=str(secret))
    assert load_settings(CommandLineSettings, config_file=config_file).malbeacon.api_key.get_secret_value() == API_KEY


def test_unknown_sections_and_malbeacon_keys_are_refused_with_the_closest_known_name(monkeypatch, config_file):
    """A misspelt key would otherwise be ignored silently: every one is reported, with the other problems."""
    config_file.write_text(
        "malbeacon:\n  max-tlp: TLP:CLEAR\n  API_KEY: x\n  colour: blue\n  max_retries: 11\n"
        "opencit:\n  url: http://opencti:8080\nextras: {}\n",
        encoding="utf-8",
    )
    set_env(monkeypatch, **VALID_ENV)
    assert problems_of(Settings, config_file) == [
        "opencit: unknown section; did you mean opencti?",
        "extras: unknown section; allowed: opencti, connector, malbeacon, mq",
        "malbeacon.max-tlp: unknown setting; did you mean malbeacon.max_tlp?",
        "malbeacon.API_KEY: unknown setting; did you mean malbeacon.api_key?",
        "malbeacon.colour: unknown setting",
        "MALBEACON_MAX_RETRIES (malbeacon.max_retries): 11 is not an integer from 0 to 10",
    ]
    assert problems_of(CommandLineSettings, config_file)[:5] == problems_of(Settings, config_file)[:5]


def test_pycti_keys_of_the_opencti_connector_and_mq_sections_pass_through(monkeypatch, config_file):
    """pycti reads many more keys than ours from these sections: they are accepted and handed to it unchanged."""
    config_file.write_text(
        "opencti:\n  ssl_verify: false\n  json_logging: true\n"
        "connector:\n  confidence_level: 80\n  expose_metrics: true\n  queue_protocol: amqp\n"
        "mq:\n  use_ssl: true\n",
        encoding="utf-8",
    )
    set_env(monkeypatch, **VALID_ENV)
    settings = load_settings(Settings, config_file=config_file)
    config = helper_config(settings, read_config_file(config_file))
    assert config["opencti"]["ssl_verify"] is False and config["opencti"]["json_logging"] is True
    assert (config["connector"]["confidence_level"], config["connector"]["expose_metrics"]) == (80, True)
    assert config["connector"]["queue_protocol"] == "amqp"
    assert config["mq"] == {"use_ssl": True}


@pytest.mark.parametrize("kind", ["missing", "directory", "device"])
def test_an_explicit_config_file_that_cannot_be_read_is_reported_by_name(monkeypatch, tmp_path, kind):
    """A file named with --config must be there; the default ./config.yml may be absent."""
    path = {"missing": tmp_path / "missing.yml", "directory": tmp_path, "device": Path("/dev/zero")}[kind]
    reason = {"missing": "No such file or directory", "directory": "not a regular file", "device": "not a regular file"}
    set_env(monkeypatch, MALBEACON_API_KEY=API_KEY)
    with pytest.raises(SettingsError) as raised:
        load_settings(CommandLineSettings, config_file=path, required=True)
    assert raised.value.problems == [f"{path}: cannot be read ({reason[kind]})"]
    assert load_settings(CommandLineSettings, config_file=path).malbeacon.max_retries == 2  # not named: ignored


def test_a_config_file_larger_than_1_mib_is_refused(monkeypatch, config_file):
    config_file.write_text("# padding\n" * (1024 * 1024 // 10 + 1), encoding="utf-8")
    set_env(monkeypatch, MALBEACON_API_KEY=API_KEY)
    assert problems_of(CommandLineSettings, config_file) == [f"{config_file}: cannot be read (larger than 1 MiB)"]


def test_a_key_file_is_read_up_to_4_kib_and_refused_beyond(monkeypatch, config_file, tmp_path):
    secret = tmp_path / "key"
    secret.write_text("k" * 4096, encoding="utf-8")
    set_env(monkeypatch, MALBEACON_API_KEY_FILE=str(secret))
    assert (
        load_settings(CommandLineSettings, config_file=config_file).malbeacon.api_key.get_secret_value() == "k" * 4096
    )
    secret.write_text("k" * 4097, encoding="utf-8")
    assert problems_of(CommandLineSettings, config_file) == [
        f"MALBEACON_API_KEY (malbeacon.api_key): MALBEACON_API_KEY_FILE '{secret}' cannot be read (larger than 4 KiB)"
    ]
