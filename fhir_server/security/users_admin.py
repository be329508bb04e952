"""The command line of the web page's users (issue #19):

``fhir-server users add USERNAME (--organization Organization/<id> | --admin) [--display NAME] [--scopes "..."]
[--purpose CODE] [--password-stdin]``, ``users list``, ``users disable|enable USERNAME``, ``users passwd USERNAME``.
The password comes from standard input (``--password-stdin``, first line) or an interactive prompt asked twice —
never from an argument, which other users of the machine could read in the process list. All act on the store
``serve`` would use (``--data-dir`` / ``MONGODB_URI``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fhir_server.security.service import Security
from fhir_server.security.users import User, UserError, check_password, new_user, normalise_username
from fhir_server.settings import Settings
from fhir_server.store.base import Store


class _NoPassword(Exception):
    pass


def _security(store: Store, settings: Settings) -> Security:
    from fhir_server.ascmi.terminology import load_terminology

    return Security(store, purposes=frozenset(load_terminology(settings.canonical_base).purposes))


def read_password(args: argparse.Namespace) -> str:
    """The new password: first line of standard input, or typed twice at a prompt."""
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise _NoPassword("no terminal to ask for the password: pass --password-stdin and pipe it in")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise _NoPassword("the two passwords differ")
    return first


async def users_command(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    sec = _security(store, settings)
    command = args.users_command
    if command == "list":
        for doc in await sec.registry.list_users():
            print(json.dumps(User.from_json(doc).public()))
        return 0
    username = normalise_username(args.username)
    try:
        if command == "add":
            password = read_password(args)
            user = new_user(username, password, organization=None if args.admin else args.organization,
                            display=args.display or "", scope_list=args.scopes, purposes=args.purpose,
                            known_purposes=sec.purposes)
            if not await sec.add_user(user):
                print(f"a user {username!r} exists already", file=sys.stderr)
                return 1
            print(json.dumps(user.public(), indent=2))
            return 0
        found = await sec.registry.get_user(username)
        if found is None:
            print(f"no user {username!r}", file=sys.stderr)
            return 1
        user = User.from_json(found)
        if command == "passwd":
            password = read_password(args)
            check_password(password)
            user = user.with_password(password)
        else:
            user = replace(user, active=command == "enable")
    except (UserError, _NoPassword) as exc:
        print(f"cannot {command} the user: {exc}", file=sys.stderr)
        return 1
    await sec.replace_user(user)
    print(json.dumps(user.public(), indent=2))
    return 0


def add_parser(sub: Any, run: Callable[[argparse.Namespace], int]) -> None:
    us = sub.add_parser("users", help="people who sign in to the Care Partner web page: add, list, disable, "
                                      "enable, passwd")
    us_sub = us.add_subparsers(dest="users_command", required=True)
    add = us_sub.add_parser("add", help="add a user (prints it as JSON, without the password)")
    add.add_argument("username")
    who = add.add_mutually_exclusive_group(required=True)
    who.add_argument("--organization", help="the Care Partner Organization the person works for: Organization/<id>")
    who.add_argument("--admin", action="store_true", help="an administrator (no Organization)")
    add.add_argument("--display", default="", help="the person's name as shown on the page")
    add.add_argument("--scopes", action="append", default=[],
                     help='allowed SMART user scopes, space-separated, repeatable (default "user/*.cruds")')
    add.add_argument("--purpose", action="append", default=[], help="purpose of use of their tokens (default TREAT)")
    lst = us_sub.add_parser("list", help="every user, one JSON per line (no password hashes)")
    dis = us_sub.add_parser("disable", help="disable a user: their tokens stop working at once")
    ena = us_sub.add_parser("enable", help="enable a disabled user")
    pwd = us_sub.add_parser("passwd", help="set a user's password")
    for p in (dis, ena, pwd):
        p.add_argument("username")
    for p in (add, pwd):
        p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    for p in (add, lst, dis, ena, pwd):
        p.add_argument("--data-dir", default=None)
        p.set_defaults(func=run)
