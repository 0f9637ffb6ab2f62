"""Documents made in the test: a multi-page PDF (fpdf2), a Markdown file, an HTML page.

Each holds filler prose about ordinary topics and, for the retrieval tests, one *planted fact*
that only one passage states, so a search either ranks that passage first or it does not.
"""

from __future__ import annotations

FACT_PDF = "The Bluebird observatory keeps its spare telescope mirror in vault number 7341."
FACT_MD = "Project Heron's launch code is QUILL-58, known only to the night shift."
FACT_HTML = "The old harbour lighthouse was painted crimson in 1887 by Agnes Morrow."

FILLER = [
    "Gardening in spring starts with turning the soil and adding compost to the beds. "
    "Tomatoes want sun and steady water; lettuce prefers a cooler corner of the garden.",
    "Bread rises when yeast ferments sugars and releases gas that the gluten traps. "
    "A long cold proof in the fridge gives the crumb more flavour and an open texture.",
    "Trains in the valley run every half hour on weekdays and every hour on Sundays. "
    "The ticket office closes at six, but the machines on the platform take cards.",
    "Chess openings balance development, control of the centre and the safety of the king. "
    "Beginners do well to castle early and avoid moving the same piece twice.",
    "The river floods most winters, so the footpath along the bank is often closed. "
    "Walkers take the upper trail through the beech woods instead.",
]


def pdf_doc(pages: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def report_pdf() -> bytes:
    """Four pages of filler; the planted fact sits in the middle of page three."""
    pages = [FILLER[p] for p in range(4)]
    pages[2] = f"{FILLER[2]} {FACT_PDF}"
    return pdf_doc(pages)


def markdown_doc() -> bytes:
    return (f"# Bluebird handbook\n\n{FILLER[1]}\n\n"
            f"## Security\n\n{FILLER[4]} {FACT_MD}\n\n"
            f"## Gardening\n\n{FILLER[0]}\n").encode()


def html_page() -> bytes:
    return (f"<html><head><title>Town</title><script>alert('x')</script></head><body>"
            f"<h1>Harbour town</h1><p>{FILLER[2]}</p><h2>History</h2><p>{FACT_HTML}</p>"
            f"<style>p {{color: red}}</style></body></html>").encode()


def corrupt_pdf() -> bytes:
    good = pdf_doc(["This PDF will be cut short."])
    return good[:40] + b"\x00garbage\x00" * 20
