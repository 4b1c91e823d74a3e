"""The voice of the customer: survey comments and ticket text grouped into themes per touchpoint and
answer band (`features.voice.themes`), and the referral KPI (`features.voice.referrals`)."""
