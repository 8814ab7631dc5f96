"""One boto3 EC2 step through leash, as an agent makes it.

    python3 tests/sdk/boto3_ec2.py approved|rejected|held|retry|fresh-token

Run by tests/sdk_conformance.rs with the environment `leash env` prints
(HTTPS_PROXY, AWS_CA_BUNDLE, ...; the test withholds the other CA bundle
variables, so the trust that works is AWS_CA_BUNDLE's) and PYTHONPATH naming
the pinned SDK. Nothing leash-specific is set here: the credentials and the
region are the agent's own (dummies: the stand-in checks that a request is
SigV4-signed, not the signature). Prints one JSON line: what boto3
returned, or the ClientError it raised, as the agent's code would see it.

The ops-agent stack (policies/examples/ops-agent) with its EC2 prices:
- approved: a t3.micro for the 24h horizon, $0.2496;
- rejected: a p5.48xlarge capacity block, found with
  DescribeCapacityBlockOfferings (safe; leash learns its upfront fee) and
  bought with PurchaseCapacityBlock: reserved GPU capacity, refused;
- held / retry: a p4d.24xlarge, $786.5424 (above ops-agent's $500), with
  one ClientToken for both runs, so the retry is the same request;
- fresh-token: 21 g5.xlarge, $507.024, with no ClientToken of the agent's:
  botocore draws a new one for every call, so each run sends another.
"""

import json
import sys

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError

# Retries on, in standard mode: had leash's refusal looked transient (a
# throttling code, a 5xx), botocore would have sent it again, and both the
# test (leash's log) and RetryAttempts here would show it.
CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})

HELD = dict(
    ImageId="ami-0sdkconformance",
    InstanceType="p4d.24xlarge",
    MinCount=1,
    MaxCount=1,
    ClientToken="sdk-boto3-p4d-held",
)


def ec2():
    return boto3.client(
        "ec2",
        region_name="us-east-1",
        aws_access_key_id="AKIASDKCONFORMANCE01",
        aws_secret_access_key="sdk-conformance-secret-key",
        config=CONFIG,
    )


def launched(answer):
    instance = answer["Instances"][0]
    return dict(
        instance_id=instance["InstanceId"],
        instance_type=instance["InstanceType"],
        state=instance["State"]["Name"],
        retry_attempts=answer["ResponseMetadata"]["RetryAttempts"],
    )


def main():
    step = sys.argv[1]
    seen = {
        "sdk": "boto3",
        "version": boto3.__version__,
        "botocore": botocore.__version__,
        "step": step,
    }
    client = ec2()
    try:
        if step == "approved":
            seen.update(
                launched(
                    client.run_instances(
                        ImageId="ami-0sdkconformance",
                        InstanceType="t3.micro",
                        MinCount=1,
                        MaxCount=1,
                    )
                )
            )
        elif step == "rejected":
            offerings = client.describe_capacity_block_offerings(
                InstanceType="p5.48xlarge",
                InstanceCount=1,
                CapacityDurationHours=24,
            )["CapacityBlockOfferings"]
            seen.update(
                offering_id=offerings[0]["CapacityBlockOfferingId"],
                upfront_fee=offerings[0]["UpfrontFee"],
            )
            client.purchase_capacity_block(
                CapacityBlockOfferingId=offerings[0]["CapacityBlockOfferingId"],
                InstancePlatform="Linux/UNIX",
            )
            seen.update(bought=True)
        elif step in ("held", "retry"):
            seen.update(launched(client.run_instances(**HELD)))
        elif step == "fresh-token":
            seen.update(
                launched(
                    client.run_instances(
                        ImageId="ami-0sdkconformance",
                        InstanceType="g5.xlarge",
                        MinCount=21,
                        MaxCount=21,
                    )
                )
            )
        else:
            raise SystemExit(f"unknown step {step}")
    except ClientError as e:
        meta = e.response.get("ResponseMetadata", {})
        headers = meta.get("HTTPHeaders", {})
        seen.update(
            raised=type(e).__name__,
            operation=e.operation_name,
            code=e.response["Error"].get("Code"),
            message=e.response["Error"].get("Message"),
            http_status=meta.get("HTTPStatusCode"),
            retry_attempts=meta.get("RetryAttempts"),
            max_attempts_reached=meta.get("MaxAttemptsReached", False),
            hold_id=headers.get("x-leash-hold-id"),
        )
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
