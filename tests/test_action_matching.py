"""Reading a small model's reply as the admissible action it names."""

from agentgym.prompting import match_admissible, parse_action

ADMISSIBLE = ["examine latchkey", "examine locker", "examine mop", "inventory", "look",
              "take latchkey", "take mop", "unlock locker with latchkey"]


def test_exact_tag_content_is_returned_in_the_listed_spelling():
    assert parse_action("<action>Take  Mop</action>", admissible=ADMISSIBLE).action == "take mop"


def test_articles_are_ignored():
    assert parse_action("<action>take the mop</action>", admissible=ADMISSIBLE).action == "take mop"


def test_an_unclosed_tag_plays_the_first_action_it_names():
    parsed = parse_action("<action>\n\nYou examine latchkey, examine locker,", admissible=ADMISSIBLE)
    assert parsed.action == "examine latchkey" and parsed.problem is None


def test_the_longest_action_at_one_position_wins():
    text = "<action>unlock the locker with the latchkey now</action>"
    assert parse_action(text, admissible=ADMISSIBLE).action == "unlock locker with latchkey"
    # "take latchkey" starts later than "look"
    assert match_admissible("look, then take latchkey", ADMISSIBLE) == "look"


def test_words_must_be_contiguous_and_whole():
    assert match_admissible("take a mop", ADMISSIBLE) == "take mop"
    assert match_admissible("take the big mop", ADMISSIBLE) is None
    assert match_admissible("looking around", ADMISSIBLE) is None


def test_a_reply_naming_nothing_keeps_the_old_reading():
    assert parse_action("<action>pick up mop</action>", admissible=ADMISSIBLE).action == "pick up mop"
    unclosed = parse_action("<action>\n\nYou are now playing", admissible=ADMISSIBLE)
    assert unclosed.action is None and unclosed.problem == "reply has an unclosed <action> tag"
    assert parse_action("no tag at all: take mop", admissible=ADMISSIBLE).action is None


def test_without_admissible_actions_nothing_is_matched():
    assert parse_action("<action>take the mop</action>").action == "take the mop"
    assert parse_action("<action>take the mop").action is None
