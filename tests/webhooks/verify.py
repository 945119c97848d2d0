"""Checks a webhook request's signature with the Standard Webhooks reference library, which
Facteur did not write.

Usage: verify.py SECRET < request.json, where request.json is
{"headers": {"webhook-id": ..., "webhook-timestamp": ..., "webhook-signature": ...},
 "body": "<the body as sent>"}. Prints `ok` and the event type, or `fail` and the
library's reason.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> None:
    request = json.load(sys.stdin)
    try:
        event = Webhook(sys.argv[1]).verify(request["body"], request["headers"])
    except (WebhookVerificationError, ValueError) as error:
        # A signature that is not base64 is a ValueError (binascii.Error) here.
        print(f"fail: {error}")
        return
    print(f"ok {event['type']}")


if __name__ == "__main__":
    main()
