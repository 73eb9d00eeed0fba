/* SPDX-License-Identifier: MIT */
/*
 * edf_read FILE: read an EDF+/BDF+ file with libedf (edflib) as a
 * researcher's program would, and print what it holds as one JSON object
 * on stdout: header, each signal's parameters and digital samples, and
 * the annotations. Exit status 2 (and {"error": N}) when edflib refuses
 * the file. For tests/integration/test_record.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edflib.h>

static void edf_read_str(const char *s)
{
	const unsigned char *p;

	putchar('"');
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			printf("\\%c", *p);
		} else if (*p < 0x20) {
			printf("\\u%04x", *p);
		} else {
			putchar(*p);
		}
	}
	putchar('"');
}

static int edf_read_signal(const struct edf_hdr_struct *h, int sig)
{
	const struct edf_param_struct *p = &h->signalparam[sig];
	long long i, n = p->smp_in_file;
	int *buf;

	printf("%s{\"label\": ", sig ? ", " : "");
	edf_read_str(p->label);
	printf(", \"physdimension\": ");
	edf_read_str(p->physdimension);
	printf(", \"prefilter\": ");
	edf_read_str(p->prefilter);
	printf(", \"transducer\": ");
	edf_read_str(p->transducer);
	printf(", \"phys_max\": %.17g, \"phys_min\": %.17g, \"dig_max\": %d, \"dig_min\": %d",
	       p->phys_max, p->phys_min, p->dig_max, p->dig_min);
	printf(", \"smp_in_datarecord\": %d, \"smp_in_file\": %lld, \"samples\": [",
	       p->smp_in_datarecord, n);
	buf = malloc((size_t)(n ? n : 1) * sizeof(int));
	if (!buf) {
		return -1;
	}
	if (edfread_digital_samples(h->handle, sig, (int)n, buf) != n) {
		free(buf);
		return -1;
	}
	for (i = 0; i < n; i++) {
		printf("%s%d", i ? "," : "", buf[i]);
	}
	printf("]}");
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	struct edf_hdr_struct *h;
	struct edf_annotation_struct a;
	long long i;
	int sig;

	if (argc != 2) {
		fprintf(stderr, "usage: edf_read FILE\n");
		return 1;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		return 1;
	}
	if (edfopen_file_readonly(argv[1], h, EDFLIB_READ_ALL_ANNOTATIONS) < 0) {
		printf("{\"error\": %d}\n", h->filetype);
		free(h);
		return 2;
	}
	printf("{\"filetype\": %d, \"signals_in_file\": %d, \"datarecords\": %lld, "
	       "\"datarecord_duration\": %lld, \"file_duration\": %lld, ",
	       h->filetype, h->edfsignals, h->datarecords_in_file, h->datarecord_duration,
	       h->file_duration);
	printf("\"startdate\": [%d, %d, %d], \"starttime\": [%d, %d, %d], \"subsecond\": %lld, ",
	       h->startdate_year, h->startdate_month, h->startdate_day, h->starttime_hour,
	       h->starttime_minute, h->starttime_second, h->starttime_subsecond);
	printf("\"patientcode\": ");
	edf_read_str(h->patientcode);
	printf(", \"admincode\": ");
	edf_read_str(h->admincode);
	printf(", \"equipment\": ");
	edf_read_str(h->equipment);
	printf(", \"technician\": ");
	edf_read_str(h->technician);
	printf(", \"gender\": ");
	edf_read_str(h->gender);
	printf(", \"birthdate\": ");
	edf_read_str(h->birthdate);
	printf(", \"patient_name\": ");
	edf_read_str(h->patient_name);
	printf(", \"signals\": [");
	for (sig = 0; sig < h->edfsignals; sig++) {
		if (edf_read_signal(h, sig) < 0) {
			fprintf(stderr, "edf_read: cannot read signal %d\n", sig);
			return 1;
		}
	}
	printf("], \"annotations\": [");
	for (i = 0; i < h->annotations_in_file; i++) {
		if (edf_get_annotation(h->handle, (int)i, &a) < 0) {
			return 1;
		}
		printf("%s{\"onset\": %lld, \"duration\": ", i ? ", " : "", a.onset);
		edf_read_str(a.duration);
		printf(", \"text\": ");
		edf_read_str(a.annotation);
		printf("}");
	}
	printf("]}\n");
	edfclose_file(h->handle);
	free(h);
	return 0;
}
