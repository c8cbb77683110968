"""AxBench's own prompt texts, reproduced verbatim because they are the protocol.

Source: github.com/stanfordnlp/axbench at commit e9b8cd4783c983e350d78af76f3fb2b8b15fc7d3:
- the three judge templates: ``axbench/evaluators/prompt_templates.py``
  (``UNIDIRECTIONAL_PAIRWISE_EVALUATION_{CONCEPT_RELEVANCE,INSTRUCTION_RELEVANCE,FLUENCY}_TEMPLATE``),
  filled by ``axbench/evaluators/lm_judge.py`` with the concept, the raw instruction and the generation;
- the prompting baseline: ``axbench/utils/dataset.py`` (``T_GENERATE_STEERING_PROMPT``, sent to the judge
  model to write a per-concept steering prompt; ``T_PROMPT_STEERING``, the fixed sentence used when no
  steering prompt was generated; ``SteeringDatasetFactory.create_eval_df`` joins either with the instruction).
Upstream writes the last two with ``%s``; here every placeholder is a ``str.format`` field. Trailing spaces
and the blank line of eight spaces are upstream's and kept.
"""

from __future__ import annotations

CONCEPT_TEMPLATE = (
    "[System]\n"
    "Please act as an impartial judge and evaluate whether the specified concept is "
    "presented in the sentence fragment provided below. Focus solely on whether the concept is "
    "clearly incorporated, without regard for grammar or logical coherence.\n"
    "\n"
    "Begin your evaluation by providing a short explanation of whether the concept is "
    "clearly incorporated. Point out references to the concept in the fragment, noting any "
    "minimal or awkward incorporations. After providing your explanation, rate the concept's "
    "relevance on a scale from 0 to 2, where 0 indicates the concept is not present at all, "
    "1 indicates the concept is somewhat present but minimally or awkwardly incorporated, "
    "and 2 indicates the concept is more fully and effectively incorporated, with stronger and "
    'more natural integration. Provide your rating using this exact format: "Rating: [[score]]".\n'
    "\n"
    "[Concept Start]\n"
    "{concept}\n"
    "[Concept End]\n"
    "\n"
    "[Sentence Fragment Start]\n"
    "{sentence}\n"
    "[Sentence Fragment End]\n"
)

INSTRUCTION_TEMPLATE = (
    "[System]\n"
    "Please act as an impartial judge and evaluate whether the "
    "sentence fragment provided below is related to the instruction. Focus solely "
    "on the degree of relatedness in terms of topic, regardless of grammar, coherence, or "
    "informativeness.\n"
    "\n"
    "Begin your evaluation by providing a brief explanation of whether the "
    "sentence is related to the instruction, and point out references "
    "related to the instruction. After providing your explanation, rate the instruction "
    "relevance on a scale from 0 to 2, where 0 indicates the sentence is unrelated to the "
    "instruction, 1 indicates it is somewhat related but only minimally or indirectly relevant in terms of topic, "
    "and 2 indicates it is more clearly and directly related to the instruction. Provide your rating "
    'using this exact format: "Rating: [[score]]".\n'
    "\n"
    "[Instruction Start]\n"
    "{instruction}\n"
    "[Instruction End]\n"
    "\n"
    "[Sentence Fragment Start]\n"
    "{sentence}\n"
    "[Sentence Fragment End]\n"
)

FLUENCY_TEMPLATE = (
    "[System]\n"
    "Please act as an impartial judge and evaluate the fluency of the "
    "sentence fragment provided below. Focus solely on fluency, disregarding "
    "its completeness, relevance, coherence with any broader context, or informativeness.\n"
    "\n"
    "Begin your evaluation by briefly describing the fluency of the sentence, noting any "
    "unnatural phrasing, awkward transitions, grammatical errors, or repetitive structures that "
    "may hinder readability. After providing your explanation, rate the sentence's fluency "
    "on a scale from 0 to 2, where 0 indicates the sentence is not fluent and highly unnatural "
    "(e.g., incomprehensible or repetitive), 1 indicates it is somewhat fluent but contains noticeable "
    "errors or awkward phrasing, and 2 indicates the sentence is fluent and almost perfect. "
    'Provide your rating using this exact format: "Rating: [[score]]".\n'
    "\n"
    "[Sentence Fragment Start]\n"
    "{sentence}\n"
    "[Sentence Fragment End]\n"
)

JUDGE_TEMPLATES = {"concept": CONCEPT_TEMPLATE, "instruction": INSTRUCTION_TEMPLATE, "fluency": FLUENCY_TEMPLATE}

GENERATE_STEERING_PROMPT = (
    "Generate a prompt to guide a language "
    "model in producing responses. \n"
    "\n"
    "Objective: \n"
    "Direct the model to include content related to {concept} (the concept) in its responses. \n"
    "Ensure the responses reference this concept, even if it doesn't directly answer the question or seems out of "
    "context.\n"
    "Optionally, provide in-context examples to reinforce this behavior.\n"
    "        \n"
    "Return only the final prompt without any additional text."
)

FIXED_STEERING_PROMPT = (
    "You must answer the question with content "
    "related to {concept} even if it is not related to the question or it does not make sense."
)

STEERED_INSTRUCTION = " {steering_prompt}\n\nQuestion: {instruction}"
"""How AxBench puts a steering prompt before the instruction (the leading space is upstream's)."""
