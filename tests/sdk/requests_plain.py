"""One plain `requests` call through leash, with nothing but `leash env`.

    python3 tests/sdk/requests_plain.py approved|rejected

requests reads HTTPS_PROXY and REQUESTS_CA_BUNDLE itself (trust_env), so
there is no leash-specific line here. Prints one JSON line: the status and
the JSON body's refund or error fields.
"""

import json
import sys

import requests

CALLS = {
    "approved": {"charge": "ch_demo", "amount": "3000"},
    "rejected": {"charge": "ch_demo", "amount": "70000"},
}


def main():
    step = sys.argv[1]
    response = requests.post(
        "https://api.stripe.com/v1/refunds",
        auth=("sk_test_sdk_conformance", ""),
        data=CALLS[step],
        timeout=60,
    )
    body = response.json()
    error = body.get("error") or {}
    print(
        json.dumps(
            {
                "sdk": "requests",
                "version": requests.__version__,
                "step": step,
                "http_status": response.status_code,
                "object": body.get("object"),
                "status": body.get("status"),
                "amount": body.get("amount"),
                "code": error.get("code"),
                "type": error.get("type"),
                "should_retry": response.headers.get("stripe-should-retry"),
            }
        )
    )


if __name__ == "__main__":
    main()
