"""Course tooling, above the core: what turns the notebooks into a course an instructor runs and grades.

* ``checks`` - the harness: cases, one-line verdicts, errors Jupyter shows without a traceback;
* ``exercises`` - the checks of the implement-it exercises of notebooks 02–05;
* ``capstone`` - a student's checkpoint scored against the committed run (notebook 06);
* ``plugin`` - the capstone's ideas in a file of the student's own (``train --plugin``);
* ``narrative`` - the notebooks' "What we got" texts, every claim gated by its noise band;
* ``student`` - student copies and nbgrader course folders (nbgrader's own release); ``runtimes`` - the
  notebooks' measured run times; ``colab`` - the Colab set-up cell's address;
  ``widget_state`` - the saved widget state of the committed notebooks, kept small.

Each uses the core (``depthkit.*``); the core never imports from here.
"""
