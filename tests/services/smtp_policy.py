"""The test SMTP server's answers: aiosmtpd's Mailbox handler (every message stored in a Maildir), except for
recipients whose local part asks for a refusal, answered the way real mail servers answer them:

  unknown-...@   RCPT  550 5.1.1 <addr>: Recipient address rejected: User unknown   (permanent)
  greylist-...@  RCPT  450 4.2.0 <addr>: Recipient address rejected: Greylisted     (try again later)
  spam-...@      DATA  554 5.7.1 Message rejected as spam                          (after the whole message)

tests/services/smtp.sh starts aiosmtpd with it (-c smtp_policy.PolicyMailbox MAILDIR).
"""

from aiosmtpd.handlers import Mailbox


def _local_part(address):
    return address.split("@", 1)[0].lower()


class PolicyMailbox(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = _local_part(address)
        if local.startswith("unknown-"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if local.startswith("greylist-"):
            return f"450 4.2.0 <{address}>: Recipient address rejected: Greylisted"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(_local_part(a).startswith("spam-") for a in envelope.rcpt_tos):
            return "554 5.7.1 Message rejected as spam"
        return await super().handle_DATA(server, session, envelope)
