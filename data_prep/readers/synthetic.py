"""A small corpus the project writes itself, for machines without ../shared data.

`make demo` and the tests must run on a fresh clone, where no third-party text may be shipped. The
sentences are generated from templates (seeded), so they have the statistics a tiny model can
learn quickly: repeated clinical phrasing with varied slots. Not a substitute for real data.
"""

from __future__ import annotations

import random
from typing import Iterator

from data_prep.readers.document import Document

_CONDITIONS = ["hypertension", "type 2 diabetes", "asthma", "atrial fibrillation", "pneumonia",
               "chronic kidney disease", "heart failure", "migraine", "sepsis", "anemia"]
_DRUGS = ["metformin", "lisinopril", "albuterol", "apixaban", "amoxicillin", "furosemide",
          "sumatriptan", "ceftriaxone", "ferrous sulfate", "atorvastatin"]
_PLACES = ["the harbour town", "the old quarter", "the valley", "the northern suburb", "the island",
           "the market square", "the university district", "the lakeside village"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_EVENTS = ["concert", "book fair", "football final", "street festival", "chess tournament", "film night"]
_OUTCOMES = ["improved", "did not change", "worsened", "resolved", "stabilised"]
_MEASURES = ["blood pressure", "HbA1c", "peak flow", "heart rate", "creatinine", "hemoglobin"]
_TEMPLATES = {
    "pubmed": [
        "In a randomised trial of {n} patients with {cond}, treatment with {drug} {out} {meas} "
        "compared with placebo over {w} weeks.",
        "We studied whether {drug} reduces complications of {cond}. Among {n} adults, {meas} "
        "{out} after {w} weeks of therapy.",
        "Background: {cond} is common. Methods: {n} participants received {drug}. Results: "
        "{meas} {out}. Conclusion: {drug} may benefit patients with {cond}.",
    ],
    "clinical": [
        "Patient admitted with {cond}. Started on {drug}. {meas} {out} during the stay. "
        "Plan: continue {drug}, follow up in {w} weeks.",
        "Assessment: {cond}, {meas} {out}. Medications: {drug}. Discharged home in stable condition.",
    ],
    "general": [
        "The committee met for {w} hours and approved {n} proposals after a long discussion.",
        "A walk of {w} kilometres along the river takes about {n} minutes at a relaxed pace.",
        "{place} opened a new library with {n} books, and {w} volunteers kept it running.",
        "Rain is expected on {day}, so the {event} moves indoors for the first time in {w} years.",
        "The recipe needs {w} eggs, a cup of flour and about {n} grams of butter.",
        "Tickets for the {event} in {place} sold out within {w} minutes of going on sale.",
        "On {day} the train to {place} was {w} minutes late because of work on the line.",
        "Local farmers harvested {n} tonnes of apples, more than in any of the last {w} seasons.",
    ],
}


def synthetic_corpus(source: str, num_docs: int, seed: int = 1234) -> Iterator[Document]:
    """Yield `num_docs` generated documents of one source ('pubmed', 'clinical' or 'general')."""
    rng = random.Random(f"{seed}-{source}")
    templates = _TEMPLATES[source]
    for i in range(num_docs):
        sentences = [
            rng.choice(templates).format(
                n=rng.randint(20, 900), cond=rng.choice(_CONDITIONS), drug=rng.choice(_DRUGS),
                out=rng.choice(_OUTCOMES), meas=rng.choice(_MEASURES), w=rng.randint(2, 52),
                place=rng.choice(_PLACES), day=rng.choice(_DAYS), event=rng.choice(_EVENTS),
            )
            for _ in range(rng.randint(3, 8))
        ]
        yield Document(id=f"synthetic-{source}:{i}", text=" ".join(sentences), source=source)


def synthetic_clinical_notes(num_notes: int, seed: int = 1234) -> Iterator[dict]:
    """MIMIC-style rows ({ROW_ID, TEXT}) of generated notes carrying made-up identifiers (dates,
    MRNs, phone numbers, e-mail addresses, ages over 89) for the PHI scrubber to find."""
    rng = random.Random(f"{seed}-notes")
    for i, doc in enumerate(synthetic_corpus("clinical", num_notes, seed)):
        header = (f"Admission date: {rng.randint(2010, 2023)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}. "
                  f"MRN: {rng.randint(1000000, 9999999)}. ")
        if rng.random() < 0.3:
            header += f"Daughter reachable at 555-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}. "
        if rng.random() < 0.1:
            header += f"Patient is a {rng.randint(90, 99)} year old. "
        if rng.random() < 0.1:
            header += f"Records sent to clinic{rng.randint(1, 99)}@example.org. "
        yield {"ROW_ID": i + 1, "TEXT": header + doc.text}


def synthetic_qa(num_questions: int, seed: int = 1234) -> Iterator[dict]:
    """Yes/no questions answerable from a generated trial summary: the shape of PubMedQA
    ({question, context, answer}) for machines without the real set. Answers follow the
    outcome word, so a model can learn them; not a benchmark."""
    rng = random.Random(f"{seed}-qa")
    for i in range(num_questions):
        cond, drug, meas = rng.choice(_CONDITIONS), rng.choice(_DRUGS), rng.choice(_MEASURES)
        improved = rng.random() < 0.5
        outcome = rng.choice(["improved", "resolved"]) if improved else rng.choice(["worsened", "did not change"])
        context = (f"Among {rng.randint(20, 900)} adults with {cond} treated with {drug}, {meas} {outcome} "
                   f"after {rng.randint(2, 52)} weeks.")
        yield {"id": f"synthetic-qa:{i}", "question": f"Does {drug} improve {meas} in {cond}?",
               "context": context, "answer": "yes" if improved else "no"}
