// One stripe-node call through leash, as an agent makes it.
//
//     node tests/sdk/stripe_node.js approved|rejected|held|retry
//
// Run by tests/sdk_conformance.rs with the environment `leash env` prints
// (HTTPS_PROXY, NODE_EXTRA_CA_CERTS, ...) and NODE_PATH naming the pinned
// SDK. Each run makes exactly one SDK call (a refund of the stand-in's
// charge ch_demo, EUR 200.00, sent without a currency) and prints one JSON
// line: what the SDK returned, or the error it raised.
'use strict';

const Stripe = require('stripe');
// https-proxy-agent 9 is ESM-only: require() loads it on Node >= 20.19.
const { HttpsProxyAgent } = require('https-proxy-agent');

// stripe-node's own https.Agent ignores the proxy variables (README, "Agent
// SDKs"): the agent is given. leash's CA comes from NODE_EXTRA_CA_CERTS.
// Retries on: had leash invited one, the SDK would send the refused call
// again, and the test would count it.
const stripe = new Stripe('sk_test_sdk_conformance', {
  httpAgent: new HttpsProxyAgent(process.env.HTTPS_PROXY),
  maxNetworkRetries: 2,
});

// The cs-agent stack: up to EUR 100 goes through, EUR 100 to 500 waits for
// a CS supervisor, EUR 500 or more is refused.
const HELD = [{ charge: 'ch_demo', amount: 12000 }, { idempotencyKey: 'sdk-node-refund-120' }];
const CALLS = {
  approved: [{ charge: 'ch_demo', amount: 2000 }],
  rejected: [{ charge: 'ch_demo', amount: 65000 }],
  held: HELD,
  retry: HELD,
};

async function main() {
  const step = process.argv[2];
  const seen = { sdk: 'stripe-node', version: Stripe.PACKAGE_VERSION, step };
  try {
    const refund = await stripe.refunds.create(...CALLS[step]);
    Object.assign(seen, {
      object: refund.object,
      id: refund.id,
      status: refund.status,
      amount: refund.amount,
      currency: refund.currency,
    });
  } catch (err) {
    if (!(err instanceof Stripe.errors.StripeError)) throw err;
    const headers = err.headers || {};
    Object.assign(seen, {
      raised: err.type,
      permission_error: err instanceof Stripe.errors.StripePermissionError,
      http_status: err.statusCode,
      code: err.code,
      user_message: err.message,
      hold_id: headers['x-leash-hold-id'] || null,
      should_retry: headers['stripe-should-retry'] || null,
    });
  }
  console.log(JSON.stringify(seen));
}

// Exits at once: a kept-alive proxy socket would keep the process waiting.
main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
