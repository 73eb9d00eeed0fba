/* SPDX-License-Identifier: MIT */
/*
 * Sham and blinding (docs/sham.md): the statistician's allocation file
 * (course -> arm and blinded arm code), the sham coil, and what a session
 * start learns from them: the code the stream and the recording carry, and
 * the coil the stim thread fires. The true arm leaves this module only
 * sealed (blind_seal.h) and as the choice of coil.
 *
 * The allocation file, one course a line ('#' comments, blank lines):
 *   COURSE_ID  active|sham  ARM_CODE
 * COURSE_ID as a patient id (1-36 of A-Z a-z 0-9 . _ -, starting with a
 * letter or digit), ARM_CODE 1-16 of A-Z a-z 0-9 _ - (not "active" or
 * "sham"). Mode 0600, owned by the daemon's user; read at start-up and
 * again at each session start.
 *
 * Control and main thread only: these functions allocate and block.
 */
#ifndef RPMSD_BLIND_H
#define RPMSD_BLIND_H

#include <stddef.h>
#include <stdio.h>

#include "event.h"
#include "stim.h"

#define BLIND_CODE_MAX EVENT_ARM_CODE_MAX	/* an arm code, without the NUL */

struct rpmsd_config;
struct plugin;
struct sclock;

/** A course's arm. */
enum blind_arm {
	BLIND_ARM_ACTIVE = 0,
	BLIND_ARM_SHAM,
};

struct blind_alloc;

/**
 * Parse an allocation from @f; messages say "@name:LINE: ...".
 * @return 0 with *@out (blind_alloc_free), -EINVAL (a bad line, a course
 * twice), -ENOMEM, -EIO; the message in @err
 */
int blind_alloc_parse(const char *name, FILE *f, struct blind_alloc **out, char *err,
		      size_t errlen);

/**
 * Open the allocation file @path, refuse it unless it is a regular file of
 * mode 0600 owned by this process's user, then parse it.
 * @return 0 with *@out, -EPERM (mode or owner; the message says what was
 * found and what is required), or blind_alloc_parse's errors
 */
int blind_alloc_load(const char *path, struct blind_alloc **out, char *err, size_t errlen);

/**
 * Look @course up.
 * @return 0 with its arm and code (BLIND_CODE_MAX + 1), or -ENOENT
 */
int blind_alloc_find(const struct blind_alloc *a, const char *course, enum blind_arm *arm,
		     char *code);

/** Courses in @a. */
size_t blind_alloc_count(const struct blind_alloc *a);

/** Free. Accepts NULL. */
void blind_alloc_free(struct blind_alloc *a);

struct blind;

/**
 * Set blinding up from [blind] (NULL *@out when blind.allocation is empty):
 * check the allocation file, read the statistician's public key, make sure
 * the audit file can be appended to, load and open the sham coil's plugin
 * with its [sham_coil.<plugin>] keys. Main thread, at start-up.
 * @return 0, or a negative errno with the message in @err
 */
int blind_create(const struct rpmsd_config *cfg, struct sclock *clock, struct blind **out,
		 char *err, size_t errlen);

/**
 * For --check-config: what blind_create checks, by the same code, without
 * writing or opening anything: the allocation file (mode, owner, every
 * line), the statistician's public key, the audit file appendable (not
 * written), the sham coil's plugin loaded and its [sham_coil.<plugin>]
 * keys valid (not opened: that takes its output line). 0 without
 * blind.allocation.
 * @return 0, or a negative errno with the message in @err
 */
int blind_check(const struct rpmsd_config *cfg, char *err, size_t errlen);

/** The sham coil (open), or NULL for a NULL @b. */
struct plugin *blind_sham_coil(const struct blind *b);

/** Close the sham coil and free. Accepts NULL. */
void blind_destroy(struct blind *b);

/** What a session start learned. */
struct blind_start {
	char arm_code[BLIND_CODE_MAX + 1];	/* "" when not blinded */
	enum stim_coil coil;			/* which coil fires the session */
};

/**
 * A session starts (control thread): without blinding (@b NULL), no code
 * and the active coil. With it, @course must be in the allocation file
 * (read again now, with its checks); the true arm is sealed with the
 * patient, course, session and time and appended to the audit (fsynced)
 * before this returns 0.
 * @return 0, -EINVAL (no course), -ENOENT (course not allocated), the
 * allocation's or the audit's error; the reason in @err, nothing started
 */
int blind_session_start(struct blind *b, const char *patient, const char *course,
			const char *session, struct blind_start *out, char *err, size_t errlen);

#endif /* RPMSD_BLIND_H */
