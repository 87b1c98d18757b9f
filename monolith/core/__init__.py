"""Tests of the HTTP contract layer (libs/blogweb) as the monolith uses it.

The layer itself moved to libs/blogweb when the first service needed it; the
monolith imports it like every service does.
"""
