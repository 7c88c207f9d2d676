"""Microsoft's public hosts: the global service and the national clouds.

Microsoft's "national cloud deployments": US Government L4 and L5 (DoD), China operated by
21Vianet, and the retired Microsoft Cloud Deutschland. Kept apart from ``auth`` (which loads
msal) so that settings can name these hosts without importing a provider library.
"""

from __future__ import annotations

# Graph's service roots. A token for one is refused by another: "any permission scope value
# (including .default) that contains the Microsoft Graph domain MUST use the domain of the
# service root of the national cloud", so the app's scope follows the host of the alias's API
# base URL (``auth.graph_resource``).
GRAPH_HOSTS = frozenset(
    {
        "graph.microsoft.com",
        "graph.microsoft.us",
        "dod-graph.microsoft.us",
        "microsoftgraph.chinacloudapi.cn",
        "graph.microsoft.de",
    }
)

# The identity platform's hosts (the authority, without the tenant), one per cloud above:
# US Government L4 and L5 share login.microsoftonline.us.
LOGIN_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.microsoftonline.de",
    }
)

PUBLIC_HOSTS = LOGIN_HOSTS | GRAPH_HOSTS
