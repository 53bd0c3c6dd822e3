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
            )
            for _ in range(rng.randint(3, 8))
        ]
        yield Document(id=f"synthetic-{source}:{i}", text=" ".join(sentences), source=source)
