#!/bin/sh
# The seed's cron script for apache2, with `okerr client` instead of okerrclient and a
# shell test. Install as /etc/cron.d/okerr-apache2:
#
#   */5 * * * * root OKERR_TEXTID=ph5ux533ea OKERR_URL=https://okerr.example.com/ /usr/local/bin/apache2.sh
#
# OKERR_TEXTID, OKERR_URL (the director, or the server with OKERR_DIRECT=1) and
# OKERR_SECRET come from the environment; OKERR_PROCESS (default apache2) names the
# process to watch. PROC sends OK while such a process runs and ERR when none does;
# the indicator goes to ERR by itself when this script stops running.
# Exit status: 0 when the server took the update, 1 when it refused it or was
# unreachable (the reason is on stderr).
set -eu
exec okerr client -s 'NAME test:apache2' 'DETAILS checked by cron' "PROC ${OKERR_PROCESS:-apache2}"
