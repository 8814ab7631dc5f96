"""One facebook-business (Marketing API) call through leash, as an agent makes it.

    python3 tests/sdk/facebook_graph.py approved|rejected|held|retry

Run by tests/sdk_conformance.rs with the environment `leash env` prints
(HTTPS_PROXY, REQUESTS_CA_BUNDLE, ...; the test withholds the other CA
bundle variables, so the trust that works is requests' REQUESTS_CA_BUNDLE,
which overrides the SDK's bundled CA) and PYTHONPATH naming the pinned SDK.
Nothing leash-specific is set here. Prints one JSON line: what the SDK
returned, or the FacebookRequestError it raised.

The test's stack (EUR; ad account act_1001 is in EUR, looked up by leash):
budgets under EUR 100 go through, EUR 100 to 1,000 wait for a growth lead,
EUR 1,000 or more are refused.
- approved: an ad set with daily_budget 2000 (EUR 20.00), AdAccount.create_ad_set;
- rejected: the stand-in's campaign 120200000000000001 updated to a
  daily_budget of 150000 (EUR 1,500.00), Campaign.api_update;
- held / retry: an ad set with daily_budget 25000 (EUR 250.00), the same
  call both times. Graph has no idempotency key: leash knows the retry by
  its fingerprint (the same path, query and form body).
"""

import json
import sys

from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.campaign import Campaign
from facebook_business.api import FacebookAdsApi
from facebook_business.apiconfig import ads_api_config
from facebook_business.exceptions import FacebookRequestError

# The SDK's crash reporter posts tracebacks to Graph: off, so that each run
# sends exactly the one request the test counts.
FacebookAdsApi.init(
    app_id="1234567890",
    app_secret="sdk-conformance-app-secret",
    access_token="EAABsdkconformance",
    crash_log=False,
)


def ad_set(name, daily_budget):
    return {
        "name": name,
        "campaign_id": "120200000000000001",
        "daily_budget": daily_budget,
        "billing_event": "IMPRESSIONS",
        "optimization_goal": "REACH",
        "targeting": {"geo_locations": {"countries": ["FR"]}},
        "status": "PAUSED",
    }


HELD = ad_set("SDK conformance held", 25000)


def main():
    step = sys.argv[1]
    seen = {
        "sdk": "facebook-business",
        "version": ads_api_config["SDK_VERSION"],
        "api_version": ads_api_config["API_VERSION"],
        "step": step,
    }
    try:
        if step == "approved":
            created = AdAccount("act_1001").create_ad_set(
                params=ad_set("SDK conformance approved", 2000)
            )
            seen.update(object=type(created).__name__, id=created["id"])
        elif step == "rejected":
            updated = Campaign("120200000000000001").api_update(
                params={"daily_budget": 150000}
            )
            seen.update(object=type(updated).__name__, success=updated.get("success"))
        elif step in ("held", "retry"):
            created = AdAccount("act_1001").create_ad_set(params=HELD)
            seen.update(object=type(created).__name__, id=created["id"])
        else:
            raise SystemExit(f"unknown step {step}")
    except FacebookRequestError as e:
        headers = {k.lower(): v for k, v in (e.http_headers() or {}).items()}
        body = e.body() if isinstance(e.body(), dict) else {}
        error = body.get("error", {})
        seen.update(
            raised=type(e).__name__,
            http_status=e.http_status(),
            api_error_code=e.api_error_code(),
            api_error_type=e.api_error_type(),
            api_error_message=e.api_error_message(),
            api_transient_error=e.api_transient_error(),
            error_user_title=error.get("error_user_title"),
            error_user_msg=error.get("error_user_msg"),
            hold_id=headers.get("x-leash-hold-id"),
        )
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
