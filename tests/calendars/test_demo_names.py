"""The demo's people carry the same names in Reserva (seed_demo) and in the provider sandbox,
so an event in a sandbox room and the booking in the portal name the same person."""

from calendars.demo import SANDBOX_ADDRESSES
from integrations.sandbox.config import default_config
from integrations.sandbox.google import directory
from reservations.management.commands.seed_demo import DEMO_USERS


def test_demo_people_have_the_sandbox_names():
    reserva = {username: f"{first} {last}" for username, _pw, first, last, *_ in DEMO_USERS}
    microsoft = {
        user["upn"]: user["display_name"]
        for tenant in default_config()["microsoft"]["tenants"]
        for user in tenant["users"]
    }
    google = {user["email"]: user["name"] for user in directory.DEFAULTS["users"]}
    checked = 0
    for username, addresses in SANDBOX_ADDRESSES.items():
        for address in addresses:
            sandbox_name = microsoft.get(address) or google.get(address)
            assert sandbox_name == reserva[username], address
            checked += 1
    assert checked == 4  # alice and bob, each in Microsoft and in Google
