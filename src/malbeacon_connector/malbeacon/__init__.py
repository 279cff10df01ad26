"""The Malbeacon API: endpoints, HTTP client, records, cache and rate limit, deadline, simulator."""
