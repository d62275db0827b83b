"""Who may use the cockpit and what they may see (README "Users, roles and scope").

people.py     a Person: who is asking, in which role, over which subtree (one type for users,
              wall screens, API tokens and the CLI)
scope.py      puts a Person on a connection: the row-level policies of migration 0011 do the rest
users.py      accounts: passwords (argon2), sign-in throttling, one-time sign-in links
walltokens.py kiosk URLs of unattended wall screens
tokens.py     bearer tokens of other systems using the HTTP API
audit.py      the append-only record of sign-ins, reveals, downloads, imports, account changes
contacts.py   reporters' contacts: masked for everyone, revealed one event at a time
"""
