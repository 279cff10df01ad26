"""Settings: environment variables over `config.yml` over defaults, validated once at start-up.

Every setting has a YAML path (`malbeacon.api_key`) and an environment name
(`MALBEACON_API_KEY`). Problems are collected and reported together, each naming the
setting and what it accepts. `HTTPS_CA_CERTIFICATES`, which OpenCTI's composer sets for every
connector, is read from the environment only (`managed_ca_certificates`).
"""

import difflib
import os
import re
import stat
import uuid
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, Field, PrivateAttr, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic.functional_validators import BeforeValidator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from malbeacon_connector.health import DEFAULT_HEALTH_FILE, PLATFORM_SECONDS
from malbeacon_connector.malbeacon.endpoints import DOMAIN_ENDPOINTS, IP_ENDPOINTS
from malbeacon_connector.malbeacon.trust import certificate_blocks
from malbeacon_connector.stix.validity import VALID_FROM_CHOICES
from malbeacon_connector.tlp import ALLOWED_TLP_TEXT, TLP_LEVELS, normalise_tlp
from malbeacon_connector.values import STIX_TYPES

DEFAULT_BASE_URL = "https://api.malbeacon.com/v1/"
DEFAULT_SCOPE: tuple[str, ...] = ("IPv4-Addr", "IPv6-Addr", "Domain-Name")
SCOPE_TYPES: tuple[str, ...] = (*STIX_TYPES, "Indicator")  # an indicator: its values of the types in scope
LOG_LEVELS = ("debug", "info", "warn", "error")
_LOG_LEVEL_ALIASES = {"warning": "warn"}
_PLACEHOLDERS = {"changeme", "change-me", "change_me", ""}
_URI = {"format": "uri"}
DEFAULT_CONFIG_FILE = Path("config.yml")
CONFIG_FILE_MAX_BYTES = 1024 * 1024
KEY_FILE_MAX_BYTES = 4096
MANAGED_CA_VARIABLE = "HTTPS_CA_CERTIFICATES"  # set by OpenCTI's composer; pycti reads it too
CA_FILE_MAX_BYTES = 1024 * 1024
KNOWN_SECTIONS = ("opencti", "connector", "malbeacon", "mq")  # mq: pycti's own (RabbitMQ), passed to it
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class SettingsError(Exception):
    """Invalid settings; `problems` holds one line per setting at fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid settings:\n" + "\n".join(f"  - {line}" for line in problems))
        self.problems = problems


def _required_secret(value: SecretStr | None, what: str) -> SecretStr:
    text = "" if value is None else value.get_secret_value().strip()
    if not text:
        raise ValueError(f"required, none given (set it to {what})")
    if text.lower() in _PLACEHOLDERS:
        raise ValueError(f"still the placeholder {text!r}; set it to {what}")
    return SecretStr(text)


def _http_url(value: str) -> str:
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError(f"{value!r} is not an http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ValueError("must not hold credentials (user:password@); the API key goes in MALBEACON_API_KEY")
    if parts.query or parts.fragment:
        raise ValueError(f"{value!r} must not hold a query or a fragment")
    return value.strip()


def _health_file(value: Any) -> Path | None:
    """A file path; `none` (any case), null or an empty value in config.yml turns the health file off."""
    if value is None or (isinstance(value, str | Path) and str(value).strip().lower() in ("", "none")):
        return None
    if not isinstance(value, str | Path):
        raise ValueError("must be a file path, or none")
    path = Path(str(value).strip())
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a directory; give a file path in it, or none")
    return path


HealthFile = Annotated[Path | None, BeforeValidator(_health_file)]


class OpenCTISettings(BaseModel):
    """Where the OpenCTI platform is and how to authenticate (needed by the connector only)."""

    url: str = Field(description="The URL of the OpenCTI platform, e.g. http://opencti:8080", json_schema_extra=_URI)
    token: SecretStr = Field(description="The token of the OpenCTI user the connector acts as")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr) -> SecretStr:
        return _required_secret(value, "an OpenCTI API token")


class ConnectorSettings(BaseModel):
    """How the connector registers with OpenCTI."""

    id: str = Field(description="A UUIDv4 unique to this connector instance")
    name: str = Field("Malbeacon", description="The name shown in OpenCTI")
    scope: Annotated[tuple[str, ...], NoDecode] = Field(
        DEFAULT_SCOPE,
        description=f"Entity types to enrich, comma-separated, among {', '.join(SCOPE_TYPES)} (an indicator's "
        "values of the other types in scope are looked up)",
        json_schema_extra={"items": {"type": "string", "enum": list(SCOPE_TYPES)}},
    )
    auto: bool = Field(False, description="Enrich every new entity in scope automatically")
    log_level: str = Field(
        "error", description=f"One of {', '.join(LOG_LEVELS)}", json_schema_extra={"enum": list(LOG_LEVELS)}
    )

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value.strip()))
        except ValueError:
            raise ValueError(f"{value!r} is not a UUID; generate one with `uuidgen`") from None

    @field_validator("scope", mode="before")
    @classmethod
    def _check_scope(cls, value: Any) -> tuple[str, ...]:
        return _choices(value, SCOPE_TYPES)

    @field_validator("log_level", mode="before")
    @classmethod
    def _check_log_level(cls, value: Any) -> str:
        level = str(value).strip().lower()
        level = _LOG_LEVEL_ALIASES.get(level, level)
        if level not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not a log level; allowed: {', '.join(LOG_LEVELS)}")
        return level


class MalbeaconSettings(BaseModel):
    """How to call the Malbeacon API and shape what it returns."""

    api_key_file: Path | None = Field(
        None,
        description="A file holding the API key (a Docker secret; a regular file of at most 4 KiB), read when "
        "MALBEACON_API_KEY is not set",
    )
    api_key: SecretStr = Field(
        None,  # type: ignore[assignment]  # validated: required unless the key file gives it
        validate_default=True,
        description="Your Malbeacon API key (https://malbeacon.com/apply), or see MALBEACON_API_KEY_FILE",
        json_schema_extra={"type": "string", "format": "password", "writeOnly": True},
    )
    api_base_url: str = Field(DEFAULT_BASE_URL, description="The Malbeacon API base URL", json_schema_extra=_URI)
    indicator_score_level: int = Field(50, description="Score of created observables and indicators", ge=0, le=100)
    max_tlp: str = Field(
        "TLP:AMBER",
        description=f"Highest TLP of an entity sent to Malbeacon: {ALLOWED_TLP_TEXT}",
        json_schema_extra={"enum": list(TLP_LEVELS)},
    )
    request_timeout: float = Field(
        10.0,
        description="Seconds one Malbeacon request may take; a lookup with its retries takes at most "
        "timeout x (retries + 1)",
        ge=1,
        le=120,
    )
    max_retries: int = Field(2, description="Retries after a timeout, a connection error, a 5xx or a 429", ge=0, le=10)

    ca_bundle: Path | None = Field(
        None,
        description="CA certificates (PEM) to trust for the Malbeacon API instead of certifi's bundle "
        "(HTTPS_CA_CERTIFICATES adds to either); certificates are always verified",
    )
    cache_ttl: int = Field(
        3600,
        description="Seconds an answer is reused instead of a new API call (0 disables the cache)",
        ge=0,
        le=30 * 86400,
    )
    cache_max_entries: int = Field(1000, description="Answers kept in the cache at most", ge=0, le=1_000_000)
    rate_limit_per_minute: int = Field(
        0, description="Malbeacon requests per minute at most (0: no limit)", ge=0, le=10_000
    )
    daily_call_limit: int = Field(
        0,
        description="Malbeacon requests per UTC day at most, retries included (0: no limit); counted in the "
        "connector's state on the platform, shared by processes with the same CONNECTOR_ID",
        ge=0,
        le=10_000_000,
    )
    max_response_mb: int = Field(64, description="Largest Malbeacon answer read, in MiB", ge=1, le=1024)
    max_records: int = Field(
        10_000, description="Records kept per enrichment, newest first (the rest are counted)", ge=1, le=1_000_000
    )
    ip_lookups: Annotated[tuple[str, ...], NoDecode] = Field(
        ("c2",),
        description="Malbeacon endpoints asked for an IP address, comma-separated: c2 (the IP as a C2 panel), "
        "c2ip (as a C2 server's IP), actorip (as an actor who logged into C2 panels); one API call each",
        json_schema_extra={"items": {"type": "string", "enum": list(IP_ENDPOINTS)}},
    )
    domain_lookups: Annotated[tuple[str, ...], NoDecode] = Field(
        ("c2",),
        description="Malbeacon endpoints asked for a domain name, comma-separated: c2 (the domain as a C2 panel), "
        "actorhostname (as an actor's host name); one API call each",
        json_schema_extra={"items": {"type": "string", "enum": list(DOMAIN_ENDPOINTS)}},
    )
    create_indicators: bool = Field(
        True,
        description="An indicator per actor IP and host name (false: observables, infrastructure and "
        "relationships only)",
    )
    indicator_valid_from: str = Field(
        "enrichment",
        description="When an actor's indicator starts being valid: enrichment (the time of the enrichment; the "
        "platform's decay rule gives its end) or last_seen (the actor's last beacon, valid until the built-in "
        "lifetime after the enrichment)",
        json_schema_extra={"enum": list(VALID_FROM_CHOICES)},
    )
    skip_own_auto_enrichments: bool = Field(
        True,
        description="Do not look up automatic enrichments of observables this connector created (what "
        "auto-enrichment sends back from its own bundles): no enrichment loop spending API calls",
    )
    create_infrastructure: bool = Field(True, description="One Infrastructure per C2 panel, linked to its actors")
    add_autonomous_systems: bool = Field(True, description="Autonomous systems of actor and C2 IPs (belongs-to)")
    add_countries: bool = Field(True, description="Countries of actor and C2 IPs (located-at)")
    add_labels: bool = Field(True, description="Malbeacon's tags as labels")
    add_seen_times: bool = Field(True, description="First and last beacon times of actors and panels")
    add_user_agents: bool = Field(False, description="The browser user agents of actors (related-to)")
    health_file: HealthFile = Field(
        DEFAULT_HEALTH_FILE,
        description="The file the connector rewrites every 2 s for `malbeacon-connector health` (a Docker "
        "HEALTHCHECK, a Kubernetes liveness probe); none turns it off",
    )
    health_platform_seconds: int = Field(
        PLATFORM_SECONDS,
        description="Seconds without reaching the OpenCTI platform after which `health` reports the connector "
        "unhealthy; the connector asks the platform every quarter of it (every 30 s at most)",
        ge=5,
        le=3600,
    )

    @field_validator("indicator_valid_from", mode="before")
    @classmethod
    def _check_indicator_valid_from(cls, value: Any) -> str:
        choice = str(value).strip().lower().replace("-", "_")
        if choice not in VALID_FROM_CHOICES:
            raise ValueError(f"{value!r} is not allowed; allowed: {', '.join(VALID_FROM_CHOICES)}")
        return choice

    @field_validator("ip_lookups", mode="before")
    @classmethod
    def _check_ip_lookups(cls, value: Any) -> tuple[str, ...]:
        return _choices(value, IP_ENDPOINTS)

    @field_validator("domain_lookups", mode="before")
    @classmethod
    def _check_domain_lookups(cls, value: Any) -> tuple[str, ...]:
        return _choices(value, DOMAIN_ENDPOINTS)

    @field_validator("api_key", mode="before")
    @classmethod
    def _check_api_key(cls, value: Any, info: ValidationInfo) -> SecretStr:
        if value in (None, "") and info.data.get("api_key_file") is not None:
            value = _read_secret_file(info.data["api_key_file"])
        if not isinstance(value, str | SecretStr | None):
            raise ValueError("must be text")
        secret = _required_secret(
            value if isinstance(value, SecretStr) else SecretStr(value or ""), "your Malbeacon API key"
        )
        if not re.fullmatch(r"[!-~]+", secret.get_secret_value()):  # it travels in an HTTP header
            raise ValueError("must be printable ASCII without spaces; check for a copy-and-paste accident")
        return secret

    @field_validator("ca_bundle")
    @classmethod
    def _check_ca_bundle(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{str(value)!r} is not a readable file of CA certificates (PEM)")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return _http_url(value)

    _managed_ca_certificates: str | None = PrivateAttr(None)

    @property
    def managed_ca_certificates(self) -> str | None:
        """The CA certificates (PEM) of HTTPS_CA_CERTIFICATES, trusted besides `ca_bundle`; set by `settings_from`."""
        return self._managed_ca_certificates

    @field_validator(
        "indicator_score_level",
        "max_retries",
        "cache_ttl",
        "cache_max_entries",
        "rate_limit_per_minute",
        "daily_call_limit",
        "max_response_mb",
        "max_records",
        "health_platform_seconds",
        mode="before",
    )
    @classmethod
    def _check_integers(cls, value: Any, info: ValidationInfo) -> int:
        return _integer_in(value, *cls._limits(info.field_name))

    @field_validator("request_timeout", mode="before")
    @classmethod
    def _check_timeout(cls, value: Any, info: ValidationInfo) -> float:
        low, high = cls._limits(info.field_name)
        try:
            seconds = -1.0 if isinstance(value, bool) else float(value)
        except (TypeError, ValueError):
            seconds = -1.0
        if not low <= seconds <= high:
            raise ValueError(f"{value!r} is not a number of seconds from {low} to {high}")
        return seconds

    @classmethod
    def _limits(cls, field_name: str) -> tuple[int, int]:
        """The `ge`/`le` bounds declared on a field: one source for the schema and the messages."""
        limits = {item.__class__.__name__: item for item in cls.model_fields[field_name].metadata}
        return limits["Ge"].ge, limits["Le"].le

    @field_validator("max_tlp")
    @classmethod
    def _check_max_tlp(cls, value: str) -> str:
        return normalise_tlp(value)


class FileRefused(ValueError):
    """A file that cannot be read: missing, unreadable, not a regular file or too large."""


def read_small_file(path: Path, limit: int) -> bytes:
    """The content of a regular file of at most `limit` bytes; FileRefused saying why not."""
    try:
        content = _read_regular_file(path, limit + 1)
    except OSError as error:
        raise FileRefused(error.strerror or error.__class__.__name__) from None
    if len(content) > limit:
        raise FileRefused(f"larger than {_size_text(limit)}")
    return content


def _read_regular_file(path: Path, size: int) -> bytes:
    """At most `size` bytes of a regular file, opened without blocking (a FIFO would wait for a writer)."""
    descriptor = os.open(path, _READ_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise FileRefused("not a regular file")
        chunks: list[bytes] = []
        while size > 0 and (chunk := os.read(descriptor, size)):
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def _size_text(size: int) -> str:
    return f"{size // (1024 * 1024)} MiB" if size >= 1024 * 1024 else f"{size // 1024} KiB"


def _read_secret_file(path: Path) -> str:
    try:
        return read_small_file(path, KEY_FILE_MAX_BYTES).decode("utf-8").strip()
    except FileRefused as error:
        reason = str(error)
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    raise ValueError(f"MALBEACON_API_KEY_FILE {str(path)!r} cannot be read ({reason})")


def _choices(value: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list (or a YAML list) of some allowed names, case-insensitive, in canonical case."""
    entries = value.split(",") if isinstance(value, str) else value
    if not isinstance(entries, list | tuple):
        raise ValueError(f"must be a comma-separated list of {', '.join(allowed)}")
    known = {name.lower(): name for name in allowed}
    chosen = [str(entry).strip() for entry in entries if str(entry).strip()]
    unknown = [entry for entry in chosen if entry.lower() not in known]
    if unknown or not chosen:
        raise ValueError(f"unsupported entries {unknown or chosen!r}; allowed: {', '.join(allowed)}")
    return tuple(dict.fromkeys(known[entry.lower()] for entry in chosen))


def _integer_in(value: Any, low: int, high: int) -> int:
    text = str(value).strip()
    number = int(text) if not isinstance(value, bool) and re.fullmatch(r"[+-]?\d+", text) else None
    if number is None or not low <= number <= high:
        raise ValueError(f"{value!r} is not an integer from {low} to {high}")
    return number


class _LayeredSettings(BaseSettings):
    """Reads `SECTION_FIELD` environment variables over the values given (from config.yml).

    A variable set to the empty string counts as unset: it does not wipe the file's value.
    """

    model_config = SettingsConfigDict(
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings


class CommandLineSettings(_LayeredSettings):
    """What the standalone enrichment needs: the Malbeacon settings only."""

    malbeacon: MalbeaconSettings = Field(default={}, validate_default=True)


class _HealthFileSettings(BaseModel):
    health_file: HealthFile = DEFAULT_HEALTH_FILE


class HealthSettings(_LayeredSettings):
    """What `health` reads: MALBEACON_HEALTH_FILE only, whatever the other settings hold."""

    malbeacon: _HealthFileSettings = Field(default={}, validate_default=True)


def health_file_from(config_file_content: dict[str, Any]) -> Path | None:
    """The health file of the environment over a config file's content (None: turned off); SettingsError."""
    try:
        return HealthSettings(**config_file_content).malbeacon.health_file
    except ValidationError as error:
        raise SettingsError([_describe(item, HealthSettings) for item in error.errors()]) from None


class Settings(_LayeredSettings):
    """Everything the OpenCTI connector needs."""

    opencti: OpenCTISettings = Field(default={}, validate_default=True)
    connector: ConnectorSettings = Field(default={}, validate_default=True)
    malbeacon: MalbeaconSettings = Field(default={}, validate_default=True)


def read_config_file(path: Path = DEFAULT_CONFIG_FILE, required: bool = False) -> dict[str, Any]:
    """The contents of a `config.yml`: empty when it is not a file, unless `required` (given explicitly)."""
    if not required and not path.is_file():
        return {}
    try:
        content = yaml.safe_load(read_small_file(path, CONFIG_FILE_MAX_BYTES).decode("utf-8"))
    except FileRefused as error:
        raise SettingsError([f"{path}: cannot be read ({error})"]) from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise SettingsError([f"{path}: cannot be read as YAML ({error.__class__.__name__})"]) from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise SettingsError([f"{path}: must be a YAML mapping of sections (opencti, connector, malbeacon)"])
    return content


def config_file_problems(content: dict[str, Any]) -> list[str]:
    """Unknown sections and unknown `malbeacon` keys, each with the closest known name if any.

    The keys of `opencti`, `connector` and `mq` go to pycti too, which reads many more: not checked.
    """
    allowed = f"allowed: {', '.join(KNOWN_SECTIONS)}"
    problems = [
        _unknown(str(section), "section", KNOWN_SECTIONS, otherwise=allowed)
        for section in content
        if section not in KNOWN_SECTIONS
    ]
    malbeacon = content.get("malbeacon")
    known_keys = tuple(MalbeaconSettings.model_fields)
    problems += [
        _unknown(str(key), "setting", known_keys, prefix="malbeacon.")
        for key in (malbeacon if isinstance(malbeacon, dict) else ())
        if key not in known_keys
    ]
    return problems


def _unknown(name: str, what: str, known: tuple[str, ...], prefix: str = "", otherwise: str = "") -> str:
    """`<prefix><name>: unknown <what>; did you mean <prefix><closest>?`, the closest found case-insensitively."""
    close = difflib.get_close_matches(name.lower().replace("-", "_"), known, n=1)
    hint = f"did you mean {prefix}{close[0]}?" if close else otherwise
    return f"{prefix}{name}: unknown {what}" + (f"; {hint}" if hint else "")


def _describe(error: dict[str, Any], model: type[BaseModel]) -> str:
    location = [str(part) for part in error["loc"]]
    env_name = "_".join(location[:2]).upper()
    yaml_name = ".".join(location[:2])
    if error["type"] == "missing":
        field_info = _field_info(model, location)
        hint = field_info.description if field_info is not None else ""
        message = f"required, none given ({hint})" if hint else "required, none given"
    else:
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] in ("bool_parsing", "bool_type"):
            message = f"{error.get('input')!r} is not a boolean; allowed: true, false"
    return f"{env_name} ({yaml_name}): {message}"


def _field_info(model: type[BaseModel], location: list[str]) -> Any:
    for part in location:
        info = model.model_fields.get(part) if isinstance(model, type) else None
        if info is None:
            return None
        model = info.annotation  # type: ignore[assignment]
    return info


T = TypeVar("T", bound=_LayeredSettings)


def load_settings(model: type[T], config_file: Path = DEFAULT_CONFIG_FILE, required: bool = False) -> T:
    """Read and validate settings; raise SettingsError listing every problem at once.

    `required`: the file was named explicitly, so it must exist and be readable.
    """
    return settings_from(model, read_config_file(config_file, required))


def settings_from(model: type[T], config_file_content: dict[str, Any]) -> T:
    """Validate settings from the environment over a config file's content."""
    problems = config_file_problems(config_file_content)
    managed_problems: list[str] = []
    try:
        managed = managed_ca_certificates(os.environ.get(MANAGED_CA_VARIABLE))
    except ValueError as error:
        managed, managed_problems = None, [f"{MANAGED_CA_VARIABLE}: {error}"]
    try:
        settings = model(**config_file_content)
    except ValidationError as error:
        raise SettingsError(problems + [_describe(item, model) for item in error.errors()] + managed_problems) from None
    if problems or managed_problems:
        raise SettingsError(problems + managed_problems)
    settings.malbeacon._managed_ca_certificates = managed  # type: ignore[attr-defined]  # both models have it
    return settings


def managed_ca_certificates(value: str | None) -> str | None:
    """The CA certificates (PEM) HTTPS_CA_CERTIFICATES gives, as PEM text or the path of a file; None when unset
    or empty; ValueError (one line) saying what is wrong and what is allowed."""
    text = (value or "").strip()
    if not text:
        return None
    allowed = (
        "allowed: PEM text holding at least one certificate (-----BEGIN CERTIFICATE-----), or the path of a "
        f"readable PEM file of at most {_size_text(CA_FILE_MAX_BYTES)} holding one"
    )
    if "-----BEGIN" in text:
        source, content = "its PEM text", text
    else:
        source = f"the file {text[:200]!r}"
        try:
            content = read_small_file(Path(text), CA_FILE_MAX_BYTES).decode("utf-8")
        except FileRefused as error:
            raise ValueError(f"{source} cannot be read ({error}); {allowed}") from None
        except UnicodeDecodeError:
            raise ValueError(f"{source} is not PEM text (not UTF-8); {allowed}") from None
        except ValueError:  # a NUL in the path
            raise ValueError(f"{source} cannot be read (not a file name); {allowed}") from None
    try:
        return certificate_blocks(content)
    except ValueError as error:
        raise ValueError(f"{source} holds {error}; {allowed}") from None
