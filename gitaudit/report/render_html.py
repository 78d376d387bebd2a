"""``--format html``: one self-contained HTML file, readable on screen and on paper.

The page comes from a jinja2 template (``templates/report.html.j2``, autoescape on:
every value from an event is HTML-escaped) with its CSS inlined; charts are SVG drawn
by pygal and inlined too. Nothing is fetched when the file is viewed: no script (the
``<script>`` pygal puts in each chart for its tooltips is removed, and so are its
comments naming its web site), no font, no image, no style sheet from elsewhere; the
only ``http`` left is the SVG namespace. The legend is HTML beneath the chart (pygal's
own would be cut by rotated labels), and each chart's values are in a collapsed table.
``@media print`` keeps backgrounds white, rows and findings unsplit, charts within A4
width.

The template is rendered as a stream (:meth:`jinja2.Template.generate`): an
:class:`~gitaudit.report.model.EventStream` goes from the store to the file event by
event.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from functools import cache
from typing import TYPE_CHECKING, Any, TextIO

from gitaudit.report.model import Cell, Chart, Report, chart_values

if TYPE_CHECKING:
    import jinja2

SVG_NS = "http://www.w3.org/2000/svg"
# Colours that stay apart on screen and in greyscale print (Okabe-Ito, then greys).
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000", "#7f7f7f", "#bbbbbb")  # fmt: skip


def cell(value: Cell) -> str:
    """A table value as shown: thousands separated, at most 6 decimals, ``-`` for None."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.6f}".rstrip("0").rstrip(".")
    return value


def cell_class(value: Cell) -> str:
    """``num`` for numbers (right-aligned), else nothing."""
    return "num" if isinstance(value, int | float) and not isinstance(value, bool) else ""


def legend(chart: Chart) -> list[tuple[str, str]]:
    """(colour, series name) of each series, in the colours pygal gives them."""
    return [(COLOURS[i % len(COLOURS)], name) for i, (name, _) in enumerate(chart.series)]


def chart_svg(chart: Chart) -> str:
    """``chart`` as an inline SVG element (text, no XML declaration, no script, no comment)."""
    import pygal
    from pygal.style import Style

    style = Style(
        background="white", plot_background="white", foreground="#1f2328",
        foreground_strong="#1f2328", foreground_subtle="#d1d9e0", opacity=".9",
        opacity_hover="1", colors=COLOURS, font_family="system-ui, Arial, sans-serif",
        label_font_size=11, major_label_font_size=11, legend_font_size=12,
        value_font_size=11, title_font_size=14,
    )  # fmt: skip
    kind = {"line": pygal.Line, "bar": pygal.Bar, "stacked_bar": pygal.StackedBar}[chart.kind]
    many = len(chart.x) > 16
    rotated = many or sum(len(x) + 2 for x in chart.x) * 7 > 900  # labels would overlap
    graph = kind(
        js=[], disable_xml_declaration=True, style=style, width=1000,
        height=320 + (70 if rotated else 0), show_legend=False,  # the page draws the legend
        x_label_rotation=40 if rotated else 0,
        show_minor_x_labels=not many, x_labels_major_count=12 if many else None,
        truncate_label=-1, truncate_legend=40, y_title=chart.y_label or None,
        print_values=False, show_dots=len(chart.x) <= 60, margin=12,
    )  # fmt: skip
    graph.x_labels = list(chart.x)
    for name, values in chart.series:
        graph.add(name, [float(value) for value in values])
    tree = graph.render_tree()
    _strip(tree)
    ET.register_namespace("", SVG_NS)
    return ET.tostring(tree, encoding="unicode")


def _strip(element: ET.Element) -> None:
    """Remove every script and comment below ``element``."""
    for child in list(element):
        tag = child.tag
        if callable(tag) or tag.rsplit("}", 1)[-1] == "script":  # a comment's tag is callable
            element.remove(child)
        else:
            _strip(child)


@cache
def environment() -> jinja2.Environment:
    """The jinja2 environment of the report templates (autoescape on, strict undefined)."""
    import jinja2
    from markupsafe import Markup

    from gitaudit import __version__

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gitaudit.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )
    env.globals.update(
        cell=cell, cell_class=cell_class, chart_values=chart_values, legend=legend,
        chart=lambda block: Markup(chart_svg(block)),  # noqa: S704 - pygal escaped the text
        version=__version__,
    )  # fmt: skip
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False, sort_keys=False)
    return env


def write_html(report: Report, out: TextIO) -> None:
    """Write ``report`` as one self-contained HTML page to ``out``, streamed."""
    template = environment().get_template("report.html.j2")
    context: dict[str, Any] = {"report": report}
    for chunk in template.generate(context):
        out.write(chunk)
