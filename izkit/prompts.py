"""The words around the soft tokens: the generator's prompts (paper sec. 3.1), APE's, and one asking for a sentence.

A prompt template holds ``{demos}``, the kappa exemplars ``Input: x\\nOutput: y`` joined by blank lines; its last
words are the cue the model continues (and may echo, which the cleaner drops: ``izkit.cleaner.lead_of``).
``--generator-prompt`` picks one of :data:`PROMPTS` for the soft-prompted generator:

    plain     the paper's completion prompt, ``{demos}`` then "The instruction was to"
    chat      the authors' framing for a chat model: the same question as one user turn of the chat template
    sentence  izkit's, for instruct models: one user turn asking for one plain-English imperative sentence, no code
              and no explanation (a code model answers "The instruction was to?" with a function); its answers are
              read by the cleaner's rule 7 (izkit.cleaner: a restated request dropped, a parroted one discarded)

APE-style always samples from APE's own forward template (Zhou et al., 2023), wrapped in the chat turns when the
generator's prompt is a chat one.
"""

from __future__ import annotations

DEMO_TEMPLATE = "Input: {input}\nOutput: {output}"  # one exemplar (paper sec. 3.1)
DEMO_SEPARATOR = "\n\n"  # between exemplars
INSTRUCTZERO_TEMPLATE = "{demos}\n\nThe instruction was to"  # the paper's prompt after the soft tokens
CHAT_TEMPLATE = "{demos}\n\nThe instruction was to?"  # the user turn of the authors' chat prompt (chat=True)
SENTENCE_TEMPLATE = ("{demos}\n\nWrite the instruction that turns each input above into its output. Answer with one "
                     "plain-English sentence in the imperative mood: no code, no explanation.")
APE_TEMPLATE = (  # the forward-generation template of APE (Zhou et al., 2023)
    "I gave a friend an instruction and five inputs. The friend read the instruction and wrote an output for every "
    "one of the inputs. Here are the input-output pairs:\n\n{demos}\n\nThe instruction was to"
)
PROMPTS: dict[str, tuple[str, bool]] = {  # --generator-prompt -> (template, wrapped in the chat template)
    "plain": (INSTRUCTZERO_TEMPLATE, False),
    "chat": (CHAT_TEMPLATE, True),
    "sentence": (SENTENCE_TEMPLATE, True),
}
