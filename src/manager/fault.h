/*
 * fault.h - failure injection for tests (like SQLite's sqlite3FaultSim):
 * with RTCMS_MANAGER_CRASH_AT=where in the environment the manager kills
 * itself (SIGKILL, as kill -9 would) when it reaches that point of a move:
 * after-claim, after-send, before-commit, after-commit.
 */
#ifndef RTCMS_MANAGER_FAULT_H
#define RTCMS_MANAGER_FAULT_H

void manager_fault_point(const char *where);

#endif
