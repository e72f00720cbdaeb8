from kiosk.platform.api import RatingLevel


def test_rating_codes_map_at_the_edge_in_both_directions():
    assert RatingLevel.VERY_SATISFIED.code_gbt == 1
    assert RatingLevel.VERY_SATISFIED.code_reporting == 5
    assert RatingLevel.VERY_DISSATISFIED.code_gbt == 5
    assert RatingLevel.VERY_DISSATISFIED.code_reporting == 1
    assert [level.code_gbt + level.code_reporting for level in RatingLevel] == [6] * 5
    assert {level for level in RatingLevel if level.is_bad} == {
        RatingLevel.DISSATISFIED,
        RatingLevel.VERY_DISSATISFIED,
    }
