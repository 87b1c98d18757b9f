"""The test plumbing every suite shares, in one place: free ports
(``ports``), deadlines that scale with one factor (``timing``), starting and
stopping real processes (``processes``), throw-away PostgreSQL databases
(``postgres``), and what later stages add. Test code only: no app imports it.
"""
