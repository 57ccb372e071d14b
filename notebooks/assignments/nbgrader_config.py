"""nbgrader's configuration for izkit's six assignments. This folder is the course root: run nbgrader from here.

    cd notebooks/assignments
    ../../.venv/bin/nbgrader generate_assignment a1_matern52 --force     # source/ -> release/ (solutions stubbed)
    ../../.venv/bin/nbgrader autograde a1_matern52                       # submitted/<student>/a1_matern52/ -> autograded/

source/<assignment>/<assignment>.ipynb holds the solutions and the hidden tests; release/, submitted/, autograded/,
feedback/ and gradebook.db are written by nbgrader (git-ignored here). notebooks/teacher/assignments.md has the
grading table and the whole routine.
"""

c = get_config()  # noqa: F821 - nbgrader provides get_config

c.CourseDirectory.course_id = "izkit"
c.CourseDirectory.root = "."  # this folder
c.CourseDirectory.assignment_id = ""
# the six assignments, in order; generate_assignment adds each to the gradebook when it first sees it
c.CourseDirectory.db_assignments = [dict(name=n) for n in (
    "a1_matern52", "a2_coupled_kernel", "a3_expected_improvement", "a4_bo_step", "a5_bo_vs_random",
    "a6_successive_halving")]
# a cell may run for minutes (a check that fits GPs, a6's simulation in full mode); nbgrader's default is 30 s
c.Execute.timeout = 600
# the stub nbgrader writes in place of each solution (its default text, named here so the tests can look for it)
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
