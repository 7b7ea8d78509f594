#!/usr/bin/env python3
"""Create fresh credentials for AWS and Postmark and store them in Vault.

This automates the first three steps of the routine rotation described in
howto/rotate-api-keys.md:

1. ask the provider for a new credential,
2. write it to Vault under ``secret/prod/<service>``,
3. trigger ``make deploy-config`` so the API pods pick it up.

The old credential is left active on purpose. Delete it by hand in the
provider's console once the error rate has been quiet for 30 minutes; the
script prints the identifier you need.

Usage::

    ./rotate_keys.py aws-backup --dry-run
    ./rotate_keys.py postmark

Requires the ``VAULT_ADDR`` environment variable and a valid Vault token
(``vault login -method=oidc``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys

SERVICES = {
    "aws-backup": "secret/prod/aws-backup",
    "postmark": "secret/prod/postmark",
}


def run(cmd: list[str], dry_run: bool) -> str:
    """Run a command and return its output; only print it when dry_run is set."""
    if dry_run:
        print("would run:", " ".join(cmd))
        return "{}"
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def new_aws_key(dry_run: bool) -> tuple[dict, str]:
    """Create a second access key for the backup IAM user.

    AWS allows at most two keys per user, so this fails if an old key from a
    previous rotation was never deleted. Clean that up first.
    """
    out = json.loads(run(["aws", "iam", "create-access-key",
                          "--user-name", "kestrel-backup"], dry_run))
    key = out.get("AccessKey", {})
    fields = {"access_key_id": key.get("AccessKeyId", "DRY-RUN"),
              "secret_access_key": key.get("SecretAccessKey", "DRY-RUN")}
    return fields, fields["access_key_id"]


def new_postmark_token(dry_run: bool) -> tuple[dict, str]:
    """Generate a new server token through the Postmark account API."""
    out = json.loads(run(["postmark-cli", "servers", "rotate-token",
                          "--server", "kestrel-prod", "--json"], dry_run))
    token = out.get("token", "DRY-RUN")
    return {"server_token": token}, token[:8] + "…"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=sorted(SERVICES))
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would happen without changing anything")
    args = parser.parse_args()

    maker = new_aws_key if args.service == "aws-backup" else new_postmark_token
    fields, label = maker(args.dry_run)

    fields["rotated_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    pairs = [f"{k}={v}" for k, v in fields.items()]
    run(["vault", "kv", "put", SERVICES[args.service], *pairs], args.dry_run)
    run(["make", "deploy-config", "ENV=prod"], args.dry_run)

    print(f"New credential {label} is live for {args.service}.")
    print("Remember to delete the previous one in the provider console after 30 minutes.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
