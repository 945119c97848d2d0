"""Checks a mail's DKIM signature with dkimpy, a verifier Facteur did not write.

usage: verify.py NAME RECORD < message

The key is looked up as DNS would, but answered from RECORD (the TXT record the mailer's
GET /dkim gives) and only for NAME ({selector}._domainkey.{domain}), so a signature that
names another selector or domain finds no key. Prints `pass`, or `fail` and dkimpy's
reasons; exits 0 on pass, 1 on fail.
"""

import logging
import sys

import dkim


def main() -> int:
    name, record = sys.argv[1], sys.argv[2]
    message = sys.stdin.buffer.read()

    def answer_txt(asked: bytes, timeout: int = 5) -> bytes | None:
        return record.encode() if asked.decode().rstrip(".") == name else None

    reasons: list[str] = []

    class Collect(logging.Handler):
        def emit(self, entry: logging.LogRecord) -> None:
            reasons.append(entry.getMessage())

    logger = logging.getLogger("dkim-check")
    logger.addHandler(Collect())
    logger.setLevel(logging.INFO)
    # minkey as receivers apply it today (RFC 8301): RSA keys under 1024 bits do not count.
    if dkim.verify(message, logger=logger, dnsfunc=answer_txt, minkey=1024):
        print("pass")
        return 0
    print("fail: " + " | ".join(reasons))
    return 1


if __name__ == "__main__":
    sys.exit(main())
