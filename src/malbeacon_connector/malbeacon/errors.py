"""What can go wrong when asking Malbeacon, each with a message a user can act on."""


class MalbeaconError(Exception):
    """A Malbeacon lookup failed; the message says why and what to do."""


class Unauthorized(MalbeaconError):
    """The API key was refused (401)."""


class QuotaExceeded(MalbeaconError):
    """The quota is used up or the account may not use this endpoint (429, 403)."""


class Unavailable(MalbeaconError):
    """Malbeacon could not be reached or kept failing (timeouts, connection errors, 5xx)."""


class BadResponse(MalbeaconError):
    """Malbeacon answered something this connector cannot read."""


class Cancelled(MalbeaconError):
    """The lookup was cut short because the connector is stopping."""


class DailyLimitReached(MalbeaconError):
    """MALBEACON_DAILY_CALL_LIMIT requests were sent today (UTC): none is sent until midnight UTC."""
