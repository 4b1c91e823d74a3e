"""The catalogue decides touchpoints: page rules first, unknown events to `other`, edits need no
code."""

from __future__ import annotations

import polars as pl
import pytest

from features.catalogue import DEFAULT_CATALOGUE, CatalogueError, load_catalogue
from features.feature_plan import build_registry


def test_page_rules_win_and_unknown_events_go_to_other():
    catalogue = load_catalogue()
    events = pl.DataFrame(
        {
            "event_type": [
                "page_view",
                "page_view",
                "page_view",
                "exit_intent",
                "exit_intent",
                "payment_error",
                "teleport",
            ],
            "page": ["/blog/a", "/pricing", "/home", "/checkout", "/account", None, None],
        }
    )
    assert events.select(catalogue.clickstream_touchpoint())["literal"].to_list() == [
        "content",
        "pricing",
        "website",
        "checkout",
        "website",
        "checkout",
        "other",
    ]


def test_support_and_survey_routing():
    catalogue = load_catalogue()
    assert pl.DataFrame({"channel": ["phone", "chatbot", "fax"]}).select(
        catalogue.support_touchpoint()
    )["channel"].to_list() == [
        "customer_service",
        "chatbot",
        "other",
    ]
    surveys = pl.DataFrame(
        {"touchpoint": [None, "checkout", "moon"]}, schema={"touchpoint": pl.String}
    )
    assert surveys.select(catalogue.survey_touchpoint())["literal"].to_list() == [
        "feedback_survey",
        "checkout",
        "other",
    ]


def test_adding_a_touchpoint_is_a_catalogue_edit(tmp_path):
    path = tmp_path / "touchpoints.toml"
    path.write_text(
        DEFAULT_CATALOGUE.read_text()
        + '\n[touchpoints.loyalty]\nphase = "post_purchase"\nevent_types = ["points_redeemed"]\n'
    )
    catalogue = load_catalogue(path)
    mapped = pl.DataFrame(
        {"event_type": ["points_redeemed"], "page": [None]},
        schema={"event_type": pl.String, "page": pl.String},
    )
    assert mapped.select(catalogue.clickstream_touchpoint()).item() == "loyalty"
    names = [d.name for d in build_registry(catalogue, [], [], horizon_days=90)]
    assert {"loyalty_touches_30d", "loyalty_days_since_last"} <= set(names)


@pytest.mark.parametrize(
    "extra, message",
    [
        ('[touchpoints.dup]\nphase = "purchase"\nevent_types = ["purchase"]\n', "claimed by both"),
        ('[touchpoints.odd]\nphase = "someday"\n', "phase 'someday'"),
    ],
)
def test_broken_catalogue_says_what_to_fix(tmp_path, extra, message):
    path = tmp_path / "touchpoints.toml"
    path.write_text(DEFAULT_CATALOGUE.read_text() + "\n" + extra)
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(path)


def test_remapping_an_event_type_moves_its_features(tmp_path):
    """Move payment errors from checkout to a new 'billing' touchpoint: an edit of the file only."""
    text = DEFAULT_CATALOGUE.read_text().replace(
        'event_types = ["checkout_start", "payment_error", "purchase"]',
        'event_types = ["checkout_start", "purchase"]',
    )
    path = tmp_path / "touchpoints.toml"
    path.write_text(
        text + '\n[touchpoints.billing]\nphase = "post_purchase"\nevent_types = ["payment_error"]\n'
    )
    names = {d.name: d for d in build_registry(load_catalogue(path), [], [], horizon_days=90)}
    assert "checkout_payment_errors_30d" not in names
    assert names["billing_payment_errors_30d"].phase == "post_purchase"
