"""What can go wrong when asking Malbeacon, each with a message a user can act on."""


class MalbeaconError(Exception):
    """A Malbeacon lookup failed; the message says why and what to do."""

    kind = "error"


class Unauthorized(MalbeaconError):
    """The API key was refused (401)."""

    kind = "unauthorized"


class QuotaExceeded(MalbeaconError):
    """The quota is used up or the account may not use this endpoint (429, 403)."""

    kind = "quota"


class Unavailable(MalbeaconError):
    """Malbeacon could not be reached or kept failing (timeouts, connection errors, 5xx)."""

    kind = "unavailable"


class BadResponse(MalbeaconError):
    """Malbeacon answered something this connector cannot read."""

    kind = "bad-response"
