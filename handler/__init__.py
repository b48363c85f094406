"""gme-autorecord: start Tencent Cloud GME room recordings once per room session."""
