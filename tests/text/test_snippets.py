"""Snippets: the best sentence or two of a chunk for a query, and the offsets of its words."""

from __future__ import annotations

from semsearch.text.snippets import best_snippet, query_terms, segments

MANUAL = """Regaining access to your account
--------------------------------

Forgotten the passphrase you sign in with? It happens to everyone, and you can sort it out yourself without waiting for support.

1. On the sign-in screen, click **Trouble signing in?** underneath the blue button.
2. Type the email address your account belongs to. We send a one-time recovery link to that inbox. The link expires after 30 minutes and can only be used once.
3. Open the link on any device and choose a new passphrase.

No email after a few minutes? Look in your spam or junk folder, and make sure you typed the address you originally registered with.
"""


def test_the_sentence_with_the_most_query_words_wins():
    snippet, highlights = best_snippet(MANUAL, "recovery link expiry")
    assert snippet == "We send a one-time recovery link to that inbox. The link expires after 30 minutes and can only be used once."
    assert snippet in MANUAL
    assert [MANUAL[a:b] for a, b in highlights] == ["recovery", "link", "link", "expires", "link"]


def test_a_second_sentence_only_when_it_adds_a_query_word():
    snippet, _ = best_snippet(MANUAL, "spam folder")
    assert snippet == "Look in your spam or junk folder, and make sure you typed the address you originally registered with."
    snippet, _ = best_snippet(MANUAL, "email spam folder")
    assert snippet.startswith("No email after a few minutes? Look in your spam")


def test_no_shared_word_gives_the_opening_past_the_heading():
    snippet, highlights = best_snippet(MANUAL, "how do I reset my password")
    assert snippet == (
        "Forgotten the passphrase you sign in with? It happens to everyone, and you can sort it out yourself "
        "without waiting for support."
    )
    assert highlights == []


def test_words_match_across_case_accents_and_simple_suffixes():
    text = "Die Straße nach KÖLN ist gesperrt. Files were copied. Resetting the router helps."
    _, highlights = best_snippet(text, "koln file reset")
    assert [text[a:b] for a, b in highlights] == ["KÖLN", "Files", "Resetting"]


def test_stop_words_are_not_highlighted_unless_nothing_else_is_asked():
    assert query_terms("how do I get to the station") == ["get", "station"]
    assert query_terms("to be or not to be") == ["to", "be", "or", "not"]


def test_long_sentence_is_cut_around_the_match():
    text = "word " * 200 + "the needle is here " + "word " * 200
    snippet, _ = best_snippet(text, "needle", max_chars=120)
    assert "needle" in snippet and len(snippet) <= 120 and snippet in text


def test_code_lines_are_units():
    code = "def load(path):\n    data = read_bytes(path)\n    return parse_config(data)\n\n\ndef save(path, config):\n    write(path, config)\n"
    snippet, _ = best_snippet(code, "parse config")
    assert snippet.startswith("return parse_config(data)")


def test_cjk_queries_match_inside_unspaced_text():
    text = "東京の天気は晴れです。大阪は雨が降っています。"
    snippet, highlights = best_snippet(text, "大阪の雨")
    assert snippet == "大阪は雨が降っています。"
    assert [text[a:b] for a, b in highlights] == ["大阪"]


def test_segments_mark_the_highlights_inside_the_snippet():
    snippet, highlights = best_snippet(MANUAL, "spam folder")
    pieces = segments(MANUAL, snippet, highlights)
    assert "".join(piece for piece, _ in pieces) == snippet
    assert [piece for piece, marked in pieces if marked] == ["spam", "folder"]


def test_finding_the_stems_agrees_with_comparing_every_word():
    # The text is searched for the query's stems (and its words holding non-ASCII letters
    # compared one by one) rather than reading every word; both must find the same words,
    # also where stems overlap, start a camelCase part, or fold from other letters.
    import random

    from semsearch.text.snippets import _Query

    rng = random.Random(5)
    alphabets = ("abAB1 .", "esES_ \n", "ingsING ", "xyXY9 .!?", "sSß äÄ.", "kK\u212a é\u0301", "東京 。a", "aA½⑴ ")
    for alphabet in alphabets:
        for _ in range(500):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 60)))
            query = " ".join("".join(rng.choice(alphabet.strip()) for _ in range(rng.randrange(1, 6))) for _ in range(3))
            analysed = _Query(query)
            assert analysed.matches(text) == analysed._word_matches(text), (text, query)


def test_sentences_end_at_the_mark_before_closing_quotes_but_not_after_abbreviations():
    from semsearch.text.snippets import _units

    text = 'He said "stop." Then he left (quickly.) See e.g. the log. No. 5 is open! 東京です。大阪'
    assert [text[a:b] for a, b, _ in _units(text)] == [
        'He said "stop.', "Then he left (quickly.", "See e.g. the log.", "No. 5 is open!", "東京です。", "大阪",
    ]


def test_hindi_and_arabic_sentences_end_at_their_own_marks():
    hindi = "भारत एक विशाल देश है। इसकी राजधानी नई दिल्ली है और यहाँ संसद भवन भी है, जो देखने लायक है।"
    snippet, highlights = best_snippet(hindi, "राजधानी दिल्ली")
    assert snippet == "इसकी राजधानी नई दिल्ली है और यहाँ संसद भवन भी है, जो देखने लायक है।"
    assert [hindi[a:b] for a, b in highlights] == ["राजधानी", "दिल्ली"]
    arabic = "مرحبا بكم في دليل المدينة الكبير والجميل. أين تقع العاصمة؟ العاصمة هي القاهرة منذ زمن بعيد جدا."
    assert best_snippet(arabic, "القاهرة")[0] == "العاصمة هي القاهرة منذ زمن بعيد جدا."


def test_the_listed_combining_marks_are_this_pythons():
    import re
    import sys
    import unicodedata

    from semsearch.text import scripts as marks

    listed = re.compile(f"[{marks.MARKS}]")
    matched = [char for char in map(chr, range(sys.maxunicode + 1)) if listed.match(char)]
    assert len(matched) > 2000 and all(unicodedata.category(char).startswith("M") for char in matched)
    if unicodedata.unidata_version == marks.UNICODE_VERSION:
        assert marks.mark_ranges() == marks.MARKS
