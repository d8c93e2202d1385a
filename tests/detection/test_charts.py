from detection.charts import timeline_svg


def test_svg_has_a_point_per_frame_and_the_threshold():
    timeline = [{"frame": i * 5, "time": i * 0.5, "fake_probability": 0.1 * i} for i in range(10)]
    svg = str(timeline_svg(timeline, threshold=0.6))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<circle") == 10 and 'class="threshold"' in svg
    assert "frame 45 at 4.5s: 90.0% fake" in svg


def test_empty_or_malformed_timeline_renders_nothing():
    assert str(timeline_svg([])) == ""
    assert str(timeline_svg([{"frame": "x"}])) == ""


def test_long_videos_drop_markers_but_keep_the_line():
    timeline = [{"frame": i, "time": i / 30, "fake_probability": 0.5} for i in range(1000)]
    svg = str(timeline_svg(timeline))
    assert "<polyline" in svg and "<circle" not in svg


def test_axes_have_titles_and_the_last_label_is_not_cut():
    timeline = [{"frame": i, "time": i * 0.5, "fake_probability": 0.5} for i in range(20)]
    svg = str(timeline_svg(timeline))
    assert "Time in the video</text>" in svg and "Fake probability</text>" in svg
    tick_labels = [part for part in svg.split("<text") if 'class="axis"' in part and "%" not in part]
    assert 'text-anchor="start"' in tick_labels[0] and 'text-anchor="end"' in tick_labels[-1]


def test_points_carry_their_time_for_seeking():
    svg = str(timeline_svg([{"frame": 30, "time": 3.0, "fake_probability": 0.7}]))
    assert 'data-time="3.000"' in svg
