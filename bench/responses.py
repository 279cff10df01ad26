"""Seeded, realistic Malbeacon responses for benchmarks: actors repeat, a few fields are missing or bad."""

import random
from datetime import UTC, datetime, timedelta

_TAGS = ("agenttesla", "formbook", "stealer", "loader", "remcos", "lokibot")


def _actor(rng: random.Random, index: int) -> tuple[str, str, str, str]:
    """An actor's IP, host name, AS and country (fixed for the actor, as for a real address)."""
    if rng.random() < 0.1:
        ip = f"2001:db8:{index // 65536:x}:{index % 65536:x}::{rng.randint(1, 65535):x}"
    else:
        ip = f"{10 + index // 65536 % 200}.{index // 256 % 256}.{index % 256}.{rng.randint(1, 254)}"
    hostname = "NA" if rng.random() < 0.3 else f"host-{index}.isp{index % 97}.example.com"
    asn = f"AS{64500 + rng.randint(0, 20)} Example Network"
    return ip, hostname, asn, rng.choice(("NL", "DE", "RU", "US", "BR", "NA"))


PROFILES = {"repeating": 4, "distinct": 1}  # rows per distinct actor


def generate_rows(count: int, seed: int = 1, profile: str = "repeating") -> list[dict[str, str]]:
    """`count` beacon rows for one C2. `repeating`: about one distinct actor per four rows, heavy hitters
    repeating; `distinct`: as many actors as rows (a busy panel: most rows a new actor)."""
    rng = random.Random(seed)
    actors = [_actor(rng, index) for index in range(max(1, count // PROFILES[profile]))]
    start = datetime(2020, 1, 1, tzinfo=UTC)
    rows = []
    for position in range(count):
        ip, hostname, asn, country = actors[
            min(int(rng.paretovariate(1.2)) - 1, len(actors) - 1) if rng.random() < 0.3 else rng.randrange(len(actors))
        ]
        seen = start + timedelta(minutes=position * 7 + rng.randint(0, 6))
        rows.append(
            {
                "tstamp": seen.strftime("%Y-%m-%d %H:%M:%S"),
                "actorip": ip if rng.random() > 0.02 else "NA",
                "actorhostname": hostname,
                "actorasnorg": asn,
                "actorcountrycode": country,
                "actorcity": "NA",
                "actorloc": "52.3740,4.8897",
                "c2": "http://203.0.113.7/panel/gate.php?id=1&amp;k=2",
                "c2domain": "NA",
                "c2domainresolved": "203.0.113.7",
                "c2asnorg": "AS64501 Example Hosting",
                "c2countrycode": "US",
                "cookie_id": f"{rng.getrandbits(64):016x}",
                "useragent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/118.0",
                "tags": ",".join(rng.sample(_TAGS, rng.randint(1, 2))),
            }
        )
    return rows
