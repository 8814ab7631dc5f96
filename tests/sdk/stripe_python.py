"""One stripe-python call through leash, as an agent makes it.

    python3 tests/sdk/stripe_python.py approved|rejected|held|retry

Run by tests/sdk_conformance.rs with the environment `leash env` prints
(HTTPS_PROXY, SSL_CERT_FILE, ...) and PYTHONPATH naming the pinned SDK. Each
run makes exactly one SDK call (a refund of the stand-in's charge ch_demo,
EUR 200.00, sent without a currency) and prints one JSON line: what the SDK
returned, or the error it raised, as the agent's code would see it.
"""

import json
import os
import sys

import stripe

# stripe-python pins its bundled CA on every request: leash's bundle must be
# named (README, "Agent SDKs"). The proxy comes from HTTPS_PROXY (requests).
stripe.api_key = "sk_test_sdk_conformance"
stripe.ca_bundle_path = os.environ["SSL_CERT_FILE"]
# Retries on: had leash invited one (Stripe-Should-Retry: true, a 409, a 5xx),
# the SDK would send the refused call again, and the test would count it.
stripe.max_network_retries = 2

# The cs-agent stack: up to EUR 100 goes through, EUR 100 to 500 waits for a
# CS supervisor, EUR 500 or more is refused.
HELD = dict(charge="ch_demo", amount=12000, idempotency_key="sdk-python-refund-120")
CALLS = {
    "approved": dict(charge="ch_demo", amount=2500),
    "rejected": dict(charge="ch_demo", amount=60000),
    "held": HELD,
    "retry": HELD,
}


def main():
    step = sys.argv[1]
    seen = {"sdk": "stripe-python", "version": stripe.VERSION, "step": step}
    try:
        refund = stripe.Refund.create(**CALLS[step])
    except stripe.StripeError as e:
        headers = {k.lower(): v for k, v in (e.headers or {}).items()}
        seen.update(
            raised=type(e).__name__,
            permission_error=isinstance(e, stripe.PermissionError),
            http_status=e.http_status,
            code=e.code,
            error_code=e.error.code if e.error is not None else None,
            user_message=e.user_message,
            hold_id=headers.get("x-leash-hold-id"),
            should_retry=headers.get("stripe-should-retry"),
        )
    else:
        seen.update(
            object=refund.object,
            id=refund.id,
            status=refund.status,
            amount=refund.amount,
            currency=refund.currency,
        )
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
